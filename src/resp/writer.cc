#include "resp/writer.h"

#include "common/huge_pages.h"
#include "common/strings.h"

namespace ringkv::resp {

void Writer::header(char type, int64_t n) {
  char buf[32];
  buf[0] = type;
  size_t len = 1 + format_int64(buf + 1, n);
  buf[len++] = '\r';
  buf[len++] = '\n';
  out_->append(buf, len);
}

void Writer::simple(std::string_view s) {
  out_->push_back('+');
  out_->append(s);
  out_->append("\r\n", 2);
}

void Writer::error(std::string_view text) {
  out_->push_back('-');
  size_t start = out_->size();
  out_->append(text);
  for (size_t i = start; i < out_->size(); ++i) {
    if ((*out_)[i] == '\r' || (*out_)[i] == '\n') (*out_)[i] = ' ';
  }
  out_->append("\r\n", 2);
}

void Writer::integer(int64_t v) { header(':', v); }

void Writer::bulk(std::string_view s) {
  header('$', static_cast<int64_t>(s.size()));
  append_advised(out_, s);  // a GET of a large value
  out_->append("\r\n", 2);
}

void Writer::null() {
  if (protocol_ >= 3)
    out_->append("_\r\n", 3);
  else
    out_->append("$-1\r\n", 5);
}

void Writer::null_array() {
  if (protocol_ >= 3)
    out_->append("_\r\n", 3);
  else
    out_->append("*-1\r\n", 5);
}

void Writer::array(size_t n) { header('*', static_cast<int64_t>(n)); }

void Writer::map(size_t pairs) {
  if (protocol_ >= 3)
    header('%', static_cast<int64_t>(pairs));
  else
    header('*', static_cast<int64_t>(pairs * 2));
}

void Writer::set(size_t n) { header(protocol_ >= 3 ? '~' : '*', static_cast<int64_t>(n)); }

void Writer::dbl(double v) {
  std::string s = format_double(v);
  if (protocol_ >= 3) {
    out_->push_back(',');
    out_->append(s);
    out_->append("\r\n", 2);
  } else {
    bulk(s);
  }
}

void Writer::boolean(bool v) {
  if (protocol_ >= 3)
    out_->append(v ? "#t\r\n" : "#f\r\n", 4);
  else
    out_->append(v ? ":1\r\n" : ":0\r\n", 4);
}

void Writer::verbatim(std::string_view s, std::string_view format) {
  if (protocol_ >= 3) {
    header('=', static_cast<int64_t>(s.size() + 4));
    out_->append(format.substr(0, 3));
    out_->push_back(':');
    out_->append(s);
    out_->append("\r\n", 2);
  } else {
    bulk(s);
  }
}

}  // namespace ringkv::resp
