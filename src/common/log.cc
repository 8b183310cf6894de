#include "common/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace ringkv {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kNotice)};
int g_fd = 2;
}  // namespace

bool log_setup(const std::string& path, LogLevel level, std::string* error) {
  g_level.store(static_cast<int>(level));
  if (path.empty()) {
    g_fd = 2;
    return true;
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (error) *error = "can't open the log file '" + path + "': " + std::strerror(errno);
    return false;
  }
  g_fd = fd;
  return true;
}

void log_set_level(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }
bool log_enabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void log_write(LogLevel level, const char* fmt, ...) {
  static const char kMarks[] = ".-*#";
  char line[8192];
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm tm_buf;
  localtime_r(&tv.tv_sec, &tm_buf);
  int n = std::snprintf(line, sizeof line, "%d:M ", static_cast<int>(getpid()));
  n += static_cast<int>(std::strftime(line + n, sizeof line - n, "%d %b %Y %H:%M:%S.", &tm_buf));
  n += std::snprintf(line + n, sizeof line - n, "%03d %c ", static_cast<int>(tv.tv_usec / 1000),
                     kMarks[static_cast<int>(level) & 3]);
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  n += m;
  if (n > static_cast<int>(sizeof line) - 2) n = sizeof line - 2;
  line[n++] = '\n';
  ssize_t ignored = ::write(g_fd, line, n);
  (void)ignored;
}

}  // namespace ringkv
