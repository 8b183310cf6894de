// A growable byte buffer with a read position: bytes are appended at the end and consumed from
// the front without moving until compact().
#pragma once

#include <cstdlib>
#include <cstring>
#include <utility>

#include "common/huge_pages.h"

namespace ringkv::net {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ~ByteBuffer() { std::free(data_); }
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;

  char* begin() { return data_ + start_; }
  size_t size() const { return end_ - start_; }
  bool empty() const { return end_ == start_; }
  size_t capacity() const { return cap_; }
  // Free room after the data.
  char* write_ptr() { return data_ + end_; }
  size_t writable() const { return cap_ - end_; }
  void commit(size_t n) { end_ += n; }
  void consume(size_t n) {
    start_ += n;
    if (start_ == end_) start_ = end_ = 0;
  }
  void append(const char* p, size_t n) {
    ensure_writable(n);
    std::memcpy(data_ + end_, p, n);
    end_ += n;
  }
  // Makes room for at least n more bytes (moving data to the front first if that is enough).
  void ensure_writable(size_t n) {
    if (writable() >= n) return;
    compact();
    if (writable() >= n) return;
    size_t want = cap_ ? cap_ : 4096;
    while (want - end_ < n) want *= 2;
    char* p = static_cast<char*>(std::realloc(data_, want));
    if (p == nullptr) std::abort();
    data_ = p;
    cap_ = want;
    advise_huge_pages(data_, cap_);  // a large value arriving: fewer page faults
  }
  void compact() {
    if (start_ == 0) return;
    if (end_ > start_) std::memmove(data_, data_ + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  void release() {
    std::free(data_);
    data_ = nullptr;
    cap_ = start_ = end_ = 0;
  }

 private:
  char* data_ = nullptr;
  size_t cap_ = 0;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace ringkv::net
