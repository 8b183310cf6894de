#include "server/command_docs.h"

#include <algorithm>
#include <string_view>

#include "common/strings.h"

namespace ringkv::server {

using namespace std::literals;

namespace {
#include "server/command_docs.inc"
}  // namespace

const GenCommand* find_generated(std::string_view full_name) {
  // The generator writes the entries sorted by name.
  const GenCommand* begin = std::begin(kGenCommands);
  const GenCommand* end = std::end(kGenCommands);
  const GenCommand* it = std::lower_bound(
      begin, end, full_name, [](const GenCommand& c, std::string_view n) { return c.name < n; });
  return it != end && it->name == full_name ? it : nullptr;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t sp = s.find(' ', pos);
    if (sp == std::string_view::npos) sp = s.size();
    if (sp > pos) out.push_back(s.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return out;
}

namespace {

// Redis's getkeys procs of the commands whose key flags depend on their arguments (key specs
// flagged variable_flags): setGetKeys and bitfieldGetKeys (db.c).
bool variable_flag_keys(std::string_view name, const std::vector<std::string_view>& argv,
                        std::vector<FoundKey>* out) {
  if (name == "set") {
    for (size_t i = 3; i < argv.size(); ++i) {
      if (equals_nocase(argv[i], "get")) {
        out->push_back(FoundKey{1, "RW access update"});
        return true;
      }
    }
    out->push_back(FoundKey{1, "OW update"});
    return true;
  }
  if (name == "bitfield") {
    bool readonly = true;
    for (size_t i = 2; i < argv.size(); ++i) {
      const size_t remaining = argv.size() - i - 1;
      if (equals_nocase(argv[i], "get") && remaining >= 2) {
        i += 2;
      } else if ((equals_nocase(argv[i], "set") || equals_nocase(argv[i], "incrby")) &&
                 remaining >= 3) {
        readonly = false;
        break;
      } else if (equals_nocase(argv[i], "overflow") && remaining >= 1) {
        i += 1;
      } else {
        readonly = false;  // a syntax error: Redis assumes a write
        break;
      }
    }
    out->push_back(FoundKey{1, readonly ? "RO access" : "RW access update"});
    return true;
  }
  return false;  // no getkeys proc: no keys, as Redis
}

}  // namespace

bool keys_from_specs(const GenCommand& cmd, const std::vector<std::string_view>& argv,
                     std::vector<FoundKey>* out) {
  // A port of Redis 7.0's getKeysFromCommandWithSpecs and getKeysUsingKeySpecs (db.c), without
  // module cases.
  out->clear();
  for (int j = 0; j < cmd.key_spec_count; ++j) {
    for (std::string_view f : words(cmd.key_specs[j].flags)) {
      if (f == "variable_flags") return variable_flag_keys(cmd.name, argv, out);
    }
  }
  const int argc = static_cast<int>(argv.size());
  for (int j = 0; j < cmd.key_spec_count; ++j) {
    const GenKeySpec& spec = cmd.key_specs[j];
    bool not_key = false;
    for (std::string_view f : words(spec.flags))
      if (f == "not_key") not_key = true;
    if (not_key) continue;
    int first = 0;
    if (spec.bs == kBsIndex) {
      first = spec.bs_index;
    } else if (spec.bs == kBsKeyword) {
      int start = spec.bs_index > 0 ? spec.bs_index : argc + spec.bs_index;
      int end = spec.bs_index > 0 ? argc - 1 : 1;
      for (int i = start; i != end; i = start <= end ? i + 1 : i - 1) {
        if (i >= argc || i < 1) break;
        if (equals_nocase(argv[static_cast<size_t>(i)], spec.bs_keyword)) {
          first = i + 1;
          break;
        }
      }
      if (first == 0) continue;  // keyword not found
    } else {
      out->clear();
      return false;
    }
    int last = 0, step = 1;
    if (spec.fk == kFkRange) {
      step = spec.b;
      if (spec.a >= 0) {
        last = first + spec.a;
      } else if (spec.c == 0) {
        last = argc + spec.a;
      } else {
        last = first + ((argc - first) / spec.c + spec.a);
      }
    } else if (spec.fk == kFkKeynum) {
      step = spec.c;
      if (spec.a >= argc || first + spec.a >= argc) {
        out->clear();
        return false;
      }
      int64_t numkeys = 0;
      if (!parse_int64(argv[static_cast<size_t>(first + spec.a)], &numkeys) || numkeys < 0) {
        out->clear();
        return false;
      }
      first += spec.b;
      last = first + static_cast<int>(numkeys) - 1;
    } else {
      out->clear();
      return false;
    }
    if (last >= argc || last < first || first >= argc) {
      out->clear();
      return false;
    }
    for (int i = first; i <= last; i += step) {
      if (i >= argc || i < first) continue;
      out->push_back(FoundKey{i, spec.flags});
    }
  }
  return true;
}

}  // namespace ringkv::server
