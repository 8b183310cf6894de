// The reply writer: appends RESP2 or RESP3 replies to a byte string. It does no I/O.
//
// The same calls produce either protocol; the differences (nulls, maps, sets, doubles, booleans,
// verbatim strings) are decided here and nowhere else.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ringkv::resp {

class Writer {
 public:
  explicit Writer(std::string* out, int protocol = 2) : out_(out), protocol_(protocol) {}

  int protocol() const { return protocol_; }
  void set_protocol(int protocol) { protocol_ = protocol; }
  std::string* buffer() { return out_; }
  void set_buffer(std::string* out) { out_ = out; }

  void ok() { out_->append("+OK\r\n", 5); }
  void simple(std::string_view s);
  // `text` is the whole error with its code word ("ERR syntax error"); '-' is prepended and any
  // CR or LF in it becomes a space, as Redis does.
  void error(std::string_view text);
  void integer(int64_t v);
  void bulk(std::string_view s);
  void null();        // RESP2 "$-1", RESP3 "_"
  void null_array();  // RESP2 "*-1", RESP3 "_"
  void array(size_t n);
  void map(size_t pairs);  // RESP3 '%'; RESP2 an array of 2n
  void set(size_t n);      // RESP3 '~'; RESP2 an array
  void dbl(double v);      // RESP3 ','; RESP2 a bulk string
  void boolean(bool v);    // RESP3 '#'; RESP2 the integer 1 or 0
  // RESP3 '=' with a 3-letter format ("txt"); RESP2 a bulk string.
  void verbatim(std::string_view s, std::string_view format = "txt");
  // Pre-encoded RESP bytes, appended as they are.
  void raw(std::string_view bytes) { out_->append(bytes); }

 private:
  void header(char type, int64_t n);

  std::string* out_;
  int protocol_;
};

}  // namespace ringkv::resp
