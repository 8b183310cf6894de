// Redis's COMMAND INFO and COMMAND DOCS data for the Redis commands ringkv implements, generated
// from a real redis-server by tools/gen_command_docs.py (command_docs.inc), and the key-spec
// search Redis runs for COMMAND GETKEYS. ringkv's own commands have no entry here: their docs
// are written by hand (cmd_command.cc).
#pragma once

#include <string_view>
#include <vector>

namespace ringkv::server {

enum GenBeginSearch { kBsUnknown, kBsIndex, kBsKeyword };
enum GenFindKeys { kFkUnknown, kFkRange, kFkKeynum };

// One key spec, as COMMAND INFO prints it.
struct GenKeySpec {
  std::string_view notes;  // empty: none
  std::string_view flags;  // "RW access update" (Redis's order)
  GenBeginSearch bs;
  int bs_index;  // kBsIndex: the position; kBsKeyword: startfrom
  std::string_view bs_keyword;
  GenFindKeys fk;
  int a, b, c;  // kFkRange: lastkey, keystep, limit; kFkKeynum: keynumidx, firstkey, keystep
};

// One command or subcommand ("client|list").
struct GenCommand {
  std::string_view name;
  int arity;
  std::string_view flags;  // space-separated, as COMMAND INFO lists them
  int first_key, last_key, key_step;
  std::string_view acl_categories;  // "@read @string @fast"
  std::string_view tips;            // space-separated
  const GenKeySpec* key_specs;
  int key_spec_count;
  // COMMAND DOCS: the fields of the command's map except "subcommands", already encoded.
  int doc_fields;
  std::string_view docs_resp3;
  std::string_view docs_resp2;
};

// The generated entry for a full name ("get", "client|list"); nullptr when Redis has none.
const GenCommand* find_generated(std::string_view full_name);

// Space-separated words of a generated field.
std::vector<std::string_view> words(std::string_view s);

// Key positions (argument indexes) and the flags of the spec that found each, as Redis's
// getKeysUsingKeySpecs finds them. False when a spec cannot be applied to these arguments
// (Redis: "Invalid arguments specified for command").
struct FoundKey {
  int pos;
  std::string_view flags;
};
bool keys_from_specs(const GenCommand& cmd, const std::vector<std::string_view>& argv,
                     std::vector<FoundKey>* out);

}  // namespace ringkv::server
