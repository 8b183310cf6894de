#include "common/strings.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

namespace ringkv {

// ---------------------------------------------------------------- integers

bool parse_uint64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  if (s.size() == 1 && s[0] == '0') {
    *out = 0;
    return true;
  }
  if (s[0] < '1' || s[0] > '9') return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool parse_int64(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  bool negative = false;
  if (s[0] == '-') {
    negative = true;
    s.remove_prefix(1);
    if (s.empty() || s[0] == '0') return false;  // "-" and "-0..." are not integers for Redis
  }
  uint64_t v;
  if (!parse_uint64(s, &v)) return false;
  if (negative) {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return false;
    *out = static_cast<int64_t>(0 - v);
  } else {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(v);
  }
  return true;
}

size_t format_int64(char* buf, int64_t v) {
  char tmp[24];
  size_t n = 0;
  uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  size_t len = 0;
  if (v < 0) buf[len++] = '-';
  while (n > 0) buf[len++] = tmp[--n];
  return len;
}

std::string int64_to_string(int64_t v) {
  char buf[24];
  return std::string(buf, format_int64(buf, v));
}

// ---------------------------------------------------------------- floating point

bool parse_long_double(std::string_view s, long double* out) {
  if (s.empty() || s.size() >= 5 * 1024) return false;
  if (std::isspace(static_cast<unsigned char>(s[0]))) return false;
  std::string buf(s);  // strtold needs a terminator; values are short
  char* end = nullptr;
  errno = 0;
  long double v = std::strtold(buf.c_str(), &end);
  if (end != buf.c_str() + buf.size()) return false;
  if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || std::fpclassify(v) == FP_ZERO))
    return false;
  if (std::isnan(v)) return false;
  *out = v;
  return true;
}

bool parse_double(std::string_view s, double* out) {
  if (s.empty() || s.size() >= 5 * 1024) return false;
  if (std::isspace(static_cast<unsigned char>(s[0]))) return false;
  std::string buf(s);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(buf.c_str(), &end);
  if (end != buf.c_str() + buf.size()) return false;
  if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || std::fpclassify(v) == FP_ZERO))
    return false;
  if (std::isnan(v)) return false;
  *out = v;
  return true;
}

std::string format_long_double_human(long double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[5 * 1024];
  int l = std::snprintf(buf, sizeof buf, "%.17Lf", v);
  if (l <= 0 || l + 1 > static_cast<int>(sizeof buf)) return "0";
  if (std::strchr(buf, '.') != nullptr) {
    char* p = buf + l - 1;
    while (*p == '0') {
      --p;
      --l;
    }
    if (*p == '.') --l;
  }
  if (l == 2 && buf[0] == '-' && buf[1] == '0') {
    buf[0] = '0';
    l = 1;
  }
  return std::string(buf, l);
}

std::string format_double(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  char buf[128];
  int l = std::snprintf(buf, sizeof buf, "%.17g", v);
  return std::string(buf, l > 0 ? l : 0);
}

// ---------------------------------------------------------------- case

bool equals_nocase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string to_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string to_upper(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return r;
}

// ---------------------------------------------------------------- glob

namespace {

// A port of Redis's stringmatchlen_impl, including its guard against exponential patterns.
int match_impl(const char* pattern, int patternLen, const char* string, int stringLen, int nocase,
               int* skipLongerMatches, int nesting) {
  if (nesting > 1000) return 0;
  while (patternLen && stringLen) {
    switch (pattern[0]) {
      case '*':
        while (patternLen && pattern[1] == '*') {
          pattern++;
          patternLen--;
        }
        if (patternLen == 1) return 1;
        while (stringLen) {
          if (match_impl(pattern + 1, patternLen - 1, string, stringLen, nocase, skipLongerMatches,
                         nesting + 1))
            return 1;
          if (*skipLongerMatches) return 0;
          string++;
          stringLen--;
        }
        *skipLongerMatches = 1;
        return 0;
      case '?':
        string++;
        stringLen--;
        break;
      case '[': {
        int nott, match;
        pattern++;
        patternLen--;
        nott = pattern[0] == '^';
        if (nott) {
          pattern++;
          patternLen--;
        }
        match = 0;
        while (1) {
          if (pattern[0] == '\\' && patternLen >= 2) {
            pattern++;
            patternLen--;
            if (pattern[0] == string[0]) match = 1;
          } else if (pattern[0] == ']') {
            break;
          } else if (patternLen == 0) {
            pattern--;
            patternLen++;
            break;
          } else if (patternLen >= 3 && pattern[1] == '-') {
            int start = static_cast<unsigned char>(pattern[0]);
            int end = static_cast<unsigned char>(pattern[2]);
            int c = static_cast<unsigned char>(string[0]);
            if (start > end) std::swap(start, end);
            if (nocase) {
              start = std::tolower(start);
              end = std::tolower(end);
              c = std::tolower(c);
            }
            pattern += 2;
            patternLen -= 2;
            if (c >= start && c <= end) match = 1;
          } else {
            if (!nocase) {
              if (pattern[0] == string[0]) match = 1;
            } else {
              if (std::tolower(static_cast<unsigned char>(pattern[0])) ==
                  std::tolower(static_cast<unsigned char>(string[0])))
                match = 1;
            }
          }
          pattern++;
          patternLen--;
        }
        if (nott) match = !match;
        if (!match) return 0;
        string++;
        stringLen--;
        break;
      }
      case '\\':
        if (patternLen >= 2) {
          pattern++;
          patternLen--;
        }
        [[fallthrough]];
      default:
        if (!nocase) {
          if (pattern[0] != string[0]) return 0;
        } else {
          if (std::tolower(static_cast<unsigned char>(pattern[0])) !=
              std::tolower(static_cast<unsigned char>(string[0])))
            return 0;
        }
        string++;
        stringLen--;
        break;
    }
    pattern++;
    patternLen--;
    if (stringLen == 0) {
      while (*pattern == '*' && patternLen) {
        pattern++;
        patternLen--;
      }
      break;
    }
  }
  if (patternLen == 0 && stringLen == 0) return 1;
  return 0;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view str, bool nocase) {
  // Redis's matcher reads pattern[1] past a trailing '*' and relies on NUL terminators; copy
  // into terminated buffers so arbitrary bytes are safe.
  std::string p(pattern), s(str);
  int skip = 0;
  return match_impl(p.c_str(), static_cast<int>(p.size()), s.c_str(), static_cast<int>(s.size()),
                    nocase ? 1 : 0, &skip, 0) != 0;
}

// ---------------------------------------------------------------- memory sizes

bool parse_memory(std::string_view s, uint64_t* out) {
  std::string lower = to_lower(s);
  struct Unit {
    const char* suffix;
    uint64_t mul;
  };
  static const Unit kUnits[] = {{"gb", 1024ull * 1024 * 1024}, {"mb", 1024ull * 1024},
                                {"kb", 1024}, {"b", 1}, {"g", 1000ull * 1000 * 1000},
                                {"m", 1000ull * 1000}, {"k", 1000}};
  uint64_t mul = 1;
  std::string_view digits = lower;
  for (const Unit& u : kUnits) {
    size_t n = std::strlen(u.suffix);
    if (digits.size() > n && digits.substr(digits.size() - n) == u.suffix) {
      mul = u.mul;
      digits.remove_suffix(n);
      break;
    }
  }
  uint64_t v;
  if (!parse_uint64(digits, &v)) return false;
  if (mul != 0 && v > std::numeric_limits<uint64_t>::max() / mul) return false;
  *out = v * mul;
  return true;
}

// ---------------------------------------------------------------- argument splitting

namespace {
bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}
bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}
}  // namespace

bool split_args(std::string_view line, std::vector<std::string>* out) {
  size_t i = 0;
  const size_t n = line.size();
  // sdssplitargs walks a NUL-terminated string: a NUL byte ends the line.
  auto at = [&](size_t k) -> char { return k < n ? line[k] : '\0'; };
  while (true) {
    while (at(i) != '\0' && is_space(at(i))) ++i;
    if (at(i) == '\0') return true;
    bool inq = false, insq = false, done = false;
    std::string cur;
    while (!done) {
      char c = at(i);
      if (inq) {
        if (c == '\\' && at(i + 1) == 'x' && is_hex(at(i + 2)) && is_hex(at(i + 3))) {
          cur.push_back(static_cast<char>(hex_val(at(i + 2)) * 16 + hex_val(at(i + 3))));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          ++i;
          char e = at(i);
          switch (e) {
            case 'n': e = '\n'; break;
            case 'r': e = '\r'; break;
            case 't': e = '\t'; break;
            case 'b': e = '\b'; break;
            case 'a': e = '\a'; break;
            default: break;
          }
          cur.push_back(e);
        } else if (c == '"') {
          if (at(i + 1) != '\0' && !is_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          cur.push_back(c);
        }
      } else if (insq) {
        if (c == '\\' && at(i + 1) == '\'') {
          ++i;
          cur.push_back('\'');
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !is_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          cur.push_back(c);
        }
      } else {
        switch (c) {
          case ' ': case '\n': case '\r': case '\t': case '\0':
            done = true;
            break;
          case '"': inq = true; break;
          case '\'': insq = true; break;
          default: cur.push_back(c); break;
        }
      }
      if (at(i) != '\0') ++i;
    }
    out->push_back(std::move(cur));
  }
}

}  // namespace ringkv
