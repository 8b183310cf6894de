// Configuration: directives in redis.conf syntax, from a file and from "--name value" flags,
// each validated with an error that names the directive, the value and why it is wrong.
//
// One table (config.cc) lists every directive with its type, default, limits, whether CONFIG SET
// may change it at run time, and its one-line description; conf/ringkv.conf is checked against
// that table by a test, so the documented defaults cannot drift from the code.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ringkv/status.h"

namespace ringkv::config {

enum class Type { kBool, kInt, kMemory, kString, kEnum, kPercent };

struct Directive {
  std::string_view name;
  Type type;
  std::string_view default_value;
  bool runtime;  // may CONFIG SET change it?
  int64_t min = 0;
  int64_t max = 0;
  std::vector<std::string_view> choices;  // kEnum
  std::string_view doc;
  bool sensitive = false;  // never logged (requirepass)
};

const std::vector<Directive>& directives();
const Directive* find_directive(std::string_view name);

class Config {
 public:
  Config();

  // Reads a file in redis.conf syntax. Lines: "name arg arg ...", '#' comments, quoted args.
  Status load_file(const std::string& path);
  // Reads "--name value [value ...]" flags (after the optional config file path).
  Status load_args(const std::vector<std::string>& args);
  // Applies one directive. `source` says where it came from, for the error text.
  Status set(std::string_view name, const std::vector<std::string>& values, bool at_runtime);
  Status set(std::string_view name, std::string_view value, bool at_runtime) {
    return set(name, std::vector<std::string>{std::string(value)}, at_runtime);
  }

  // The current value as CONFIG GET prints it. REQUIRES: the directive exists.
  std::string get(std::string_view name) const;
  int64_t get_int(std::string_view name) const;
  bool get_bool(std::string_view name) const;
  // Pairs for every directive whose name matches the glob, sorted by name.
  std::vector<std::pair<std::string, std::string>> match(std::string_view pattern) const;

  // Called after a successful set() of the named directive (start-up or run time). The listener
  // may refuse the new value by returning an error, in which case the old value is restored.
  using Listener = std::function<Status(const std::string& value)>;
  void on_change(std::string_view name, Listener listener);

  // The directives changed from their defaults, as "name value" lines (CONFIG REWRITE).
  std::vector<std::string> non_default_lines() const;
  // "name value" for one directive's current value, quoted and escaped so that loading the
  // line gives the value back.
  std::string line(std::string_view name) const;
  const std::string& file_path() const { return file_path_; }

 private:
  Status validate(const Directive& d, const std::vector<std::string>& values,
                  std::string* normalized) const;

  mutable std::mutex mu_;
  std::map<std::string, std::string, std::less<>> values_;
  std::map<std::string, std::vector<Listener>, std::less<>> listeners_;
  std::string file_path_;
};

// Redis's memory value formatting for CONFIG GET: plain bytes.
std::string format_memory(uint64_t bytes);

}  // namespace ringkv::config
