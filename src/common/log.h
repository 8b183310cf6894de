// Logging in Redis's format: "pid:role dd Mon yyyy hh:mm:ss.mmm <level> message".
#pragma once

#include <cstdarg>
#include <string>

namespace ringkv {

enum class LogLevel { kDebug = 0, kVerbose = 1, kNotice = 2, kWarning = 3, kNothing = 4 };

// Set-up: where lines go ("" = stderr) and the lowest level written. Not thread-safe; call at
// start-up before other threads log.
bool log_setup(const std::string& path, LogLevel level, std::string* error);
void log_set_level(LogLevel level);
LogLevel log_level();
bool log_enabled(LogLevel level);

// Thread-safe: each call writes one whole line.
void log_write(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace ringkv

#define RKV_LOG(level, ...)                                      \
  do {                                                           \
    if (::ringkv::log_enabled(level)) ::ringkv::log_write(level, __VA_ARGS__); \
  } while (0)
#define LOG_DEBUG(...) RKV_LOG(::ringkv::LogLevel::kDebug, __VA_ARGS__)
#define LOG_VERBOSE(...) RKV_LOG(::ringkv::LogLevel::kVerbose, __VA_ARGS__)
#define LOG_NOTICE(...) RKV_LOG(::ringkv::LogLevel::kNotice, __VA_ARGS__)
#define LOG_WARNING(...) RKV_LOG(::ringkv::LogLevel::kWarning, __VA_ARGS__)
