#include "resp/reply_scanner.h"

#include <cstring>

#include "common/strings.h"

namespace ringkv::resp {

namespace {

// Reads the line starting at data[pos]; returns the offset after its CRLF or 0 if incomplete.
size_t line_end(const char* data, size_t len, size_t pos) {
  const char* cr = static_cast<const char*>(std::memchr(data + pos, '\r', len - pos));
  if (cr == nullptr) return 0;
  size_t e = static_cast<size_t>(cr - data);
  if (e + 1 >= len) return 0;
  return e + 2;
}

// Scans one reply at pos; returns the end offset, 0 if incomplete, SIZE_MAX if invalid.
constexpr size_t kBad = SIZE_MAX;

size_t scan_at(const char* data, size_t len, size_t pos, int depth) {
  if (depth > 64) return kBad;
  if (pos >= len) return 0;
  char type = data[pos];
  size_t le = line_end(data, len, pos);
  if (le == 0) return 0;
  std::string_view header(data + pos + 1, le - pos - 3);
  switch (type) {
    case '+': case '-': case ':': case '_': case ',': case '#': case '(':
      return le;
    case '$': case '=': case '!': {
      int64_t n;
      if (!parse_int64(header, &n)) return kBad;
      if (n < 0) return le;  // null bulk
      size_t end = le + static_cast<size_t>(n) + 2;
      return end <= len ? end : 0;
    }
    case '*': case '~': case '>': case '%': case '|': {
      int64_t n;
      if (!parse_int64(header, &n)) return kBad;
      if (n < 0) return le;  // null array
      size_t count = static_cast<size_t>(n) * ((type == '%' || type == '|') ? 2 : 1);
      size_t p = le;
      for (size_t i = 0; i < count; ++i) {
        size_t e = scan_at(data, len, p, depth + 1);
        if (e == 0 || e == kBad) return e;
        p = e;
      }
      // A RESP3 attribute ('|') precedes the real reply.
      if (type == '|') return scan_at(data, len, p, depth + 1);
      return p;
    }
    default:
      return kBad;
  }
}

}  // namespace

int64_t scan_reply(const char* data, size_t len) {
  size_t e = scan_at(data, len, 0, 0);
  if (e == kBad) return -1;
  return static_cast<int64_t>(e);
}

bool split_aggregate(std::string_view reply, std::vector<std::string_view>* elements) {
  elements->clear();
  if (reply.empty()) return false;
  char type = reply[0];
  if (type != '*' && type != '~' && type != '>' && type != '%') return false;
  size_t le = line_end(reply.data(), reply.size(), 0);
  if (le == 0) return false;
  int64_t n;
  if (!parse_int64(reply.substr(1, le - 3), &n) || n < 0) return false;
  size_t count = static_cast<size_t>(n) * (type == '%' ? 2 : 1);
  size_t p = le;
  for (size_t i = 0; i < count; ++i) {
    size_t e = scan_at(reply.data(), reply.size(), p, 1);
    if (e == 0 || e == kBad) return false;
    elements->push_back(reply.substr(p, e - p));
    p = e;
  }
  return true;
}

bool reply_integer(std::string_view reply, int64_t* out) {
  if (reply.size() < 4 || reply[0] != ':') return false;
  return parse_int64(reply.substr(1, reply.size() - 3), out);
}

bool reply_string(std::string_view reply, std::string_view* out) {
  if (reply.empty()) return false;
  if (reply[0] == '+') {
    *out = reply.substr(1, reply.size() - 3);
    return true;
  }
  if (reply[0] != '$') return false;
  size_t le = line_end(reply.data(), reply.size(), 0);
  int64_t n;
  if (le == 0 || !parse_int64(reply.substr(1, le - 3), &n) || n < 0) return false;
  *out = reply.substr(le, static_cast<size_t>(n));
  return true;
}

}  // namespace ringkv::resp
