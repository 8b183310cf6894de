#include "resp/parser.h"

#include <cstring>

#include "common/strings.h"
#include "resp/errors.h"

namespace ringkv::resp {

namespace {
constexpr int64_t kUnauthMaxMultibulk = 10;
constexpr int64_t kUnauthMaxBulk = 16384;
}  // namespace

void RequestParser::reset() {
  in_multibulk_ = false;
  argc_ = 0;
  bulk_len_ = -1;
  pos_ = 0;
  wanted_ = 0;
  spans_.clear();
}

ParseStatus RequestParser::fail(std::string message) {
  error_ = std::move(message);
  reset();
  return ParseStatus::kError;
}

ParseStatus RequestParser::parse(const char* data, size_t len, bool authenticated,
                                 size_t* consumed) {
  *consumed = 0;
  if (!in_multibulk_ && pos_ == 0) {
    if (len == 0) return ParseStatus::kNeedMore;
    if (data[0] != '*') return parse_inline(data, len, consumed);
  }
  return parse_multibulk(data, len, authenticated, consumed);
}

ParseStatus RequestParser::parse_inline(const char* data, size_t len, size_t* consumed) {
  const char* nl = static_cast<const char*>(std::memchr(data, '\n', len));
  if (nl == nullptr) {
    if (len > limits_.max_inline) return fail(std::string(err::kProtoBigInline));
    return ParseStatus::kNeedMore;
  }
  size_t line_len = static_cast<size_t>(nl - data);
  size_t total = line_len + 1;
  if (line_len > 0 && data[line_len - 1] == '\r') --line_len;
  inline_args_.clear();
  if (!split_args(std::string_view(data, line_len), &inline_args_)) {
    return fail(std::string(err::kProtoUnbalanced));
  }
  *consumed = total;
  if (inline_args_.empty()) return ParseStatus::kEmpty;
  args_.clear();
  for (const std::string& a : inline_args_) args_.emplace_back(a);
  return ParseStatus::kCommand;
}

ParseStatus RequestParser::parse_multibulk(const char* data, size_t len, bool authenticated,
                                           size_t* consumed) {
  if (!in_multibulk_) {
    // The "*<count>\r\n" line. Like Redis, the line ends at the first '\r' and the byte after
    // it is taken to be '\n' without looking.
    const char* cr = static_cast<const char*>(std::memchr(data, '\r', len));
    if (cr == nullptr) {
      if (len > limits_.max_inline) return fail(std::string(err::kProtoBigMbulkCount));
      return ParseStatus::kNeedMore;
    }
    size_t line_len = static_cast<size_t>(cr - data);
    if (line_len + 2 > len) return ParseStatus::kNeedMore;
    int64_t count;
    if (!parse_int64(std::string_view(data + 1, line_len - 1), &count) ||
        count > limits_.max_multibulk) {
      return fail(std::string(err::kProtoInvalidMbulk));
    }
    if (!authenticated && count > kUnauthMaxMultibulk) {
      return fail(std::string(err::kProtoUnauthMbulk));
    }
    if (count <= 0) {
      *consumed = line_len + 2;
      reset();
      return ParseStatus::kEmpty;
    }
    in_multibulk_ = true;
    argc_ = count;
    pos_ = line_len + 2;
    bulk_len_ = -1;
    spans_.clear();
    // Reserve for at most what the bytes could hold, so a huge announced count costs nothing.
    spans_.reserve(static_cast<size_t>(std::min<int64_t>(count, 1024)));
  }

  while (static_cast<int64_t>(spans_.size()) < argc_) {
    if (bulk_len_ < 0) {
      const char* start = data + pos_;
      size_t avail = len - pos_;
      const char* cr = static_cast<const char*>(std::memchr(start, '\r', avail));
      if (cr == nullptr) {
        if (avail > limits_.max_inline) return fail(std::string(err::kProtoBigBulkCount));
        wanted_ = 0;
        return ParseStatus::kNeedMore;
      }
      size_t line_len = static_cast<size_t>(cr - start);
      if (line_len + 2 > avail) return ParseStatus::kNeedMore;
      if (start[0] != '$') {
        std::string m = "ERR Protocol error: expected '$', got '";
        m.push_back(start[0]);
        m += "'";
        return fail(std::move(m));
      }
      int64_t blen;
      if (!parse_int64(std::string_view(start + 1, line_len - 1), &blen) || blen < 0 ||
          blen > limits_.max_bulk_len) {
        return fail(std::string(err::kProtoInvalidBulk));
      }
      if (!authenticated && blen > kUnauthMaxBulk) {
        return fail(std::string(err::kProtoUnauthBulk));
      }
      pos_ += line_len + 2;
      bulk_len_ = blen;
    }
    size_t need = static_cast<size_t>(bulk_len_) + 2;
    if (len - pos_ < need) {
      wanted_ = pos_ + need;
      return ParseStatus::kNeedMore;
    }
    spans_.emplace_back(pos_, static_cast<size_t>(bulk_len_));
    pos_ += need;  // like Redis, the two bytes after the bulk are not checked
    bulk_len_ = -1;
  }

  args_.clear();
  args_.reserve(spans_.size());
  for (const auto& [off, n] : spans_) args_.emplace_back(data + off, n);
  *consumed = pos_;
  in_multibulk_ = false;
  argc_ = 0;
  pos_ = 0;
  wanted_ = 0;
  spans_.clear();
  return ParseStatus::kCommand;
}

}  // namespace ringkv::resp
