// Tests for server::HotCache, one event loop's cache of values read from other nodes.
#include "server/hot_cache.h"

#include <catch2/catch.hpp>
#include <string>

using ringkv::server::HotCache;

namespace {
constexpr size_t kRoom = 1 << 20;
// A GET's fetch and reply in one step.
void read_through(HotCache& c, const std::string& key, const std::string& reply, int64_t now,
                  int64_t ttl = 100, size_t room = kRoom) {
  c.fetching(key);
  c.fetched(key, reply, 7, 2, now, ttl, room);
}
}  // namespace

TEST_CASE("a value read from its primary is served until it expires, for that epoch and owner") {
  HotCache c;
  read_through(c, "k", "$1\r\nv\r\n", 1000);
  CHECK(c.find("k", 7, 2, 1000) == "$1\r\nv\r\n");
  CHECK(c.find("k", 7, 2, 1099) == "$1\r\nv\r\n");
  CHECK(c.hits() == 2);
  CHECK(c.find("k", 7, 2, 1100).empty());  // expired, and dropped
  CHECK(c.keys() == 0);
  read_through(c, "k", "$1\r\nv\r\n", 2000);
  CHECK(c.find("k", 8, 2, 2000).empty());  // another epoch
  read_through(c, "k", "$1\r\nv\r\n", 2000);
  CHECK(c.find("k", 7, 3, 2000).empty());  // another primary
  CHECK(c.misses() == 3);
  CHECK(c.bytes() == 0);
}

TEST_CASE("nil, errors and failed reads are not kept") {
  HotCache c;
  read_through(c, "a", "$-1\r\n", 0);
  read_through(c, "b", "_\r\n", 0);
  read_through(c, "c", "-ERR no\r\n", 0);
  read_through(c, "d", "", 0);
  CHECK(c.keys() == 0);
  CHECK(c.find("a", 7, 2, 0).empty());
}

TEST_CASE("a read under way when its key is written or the cache emptied is not kept") {
  HotCache c;
  c.fetching("k");
  c.fetching("k");
  c.invalidate("k");
  c.fetched("k", "$1\r\nold\r\n", 7, 2, 0, 100, kRoom);
  c.fetched("k", "$1\r\nold\r\n", 7, 2, 0, 100, kRoom);
  CHECK(c.keys() == 0);
  // The marks go with the last read under way: the next read is kept.
  read_through(c, "k", "$3\r\nnew\r\n", 0);
  CHECK(c.find("k", 7, 2, 0) == "$3\r\nnew\r\n");
  c.fetching("j");
  c.clear();
  c.fetched("j", "$1\r\nx\r\n", 7, 2, 0, 100, kRoom);
  CHECK(c.keys() == 0);
  c.invalidate("k");  // gone already: nothing to do
  CHECK(c.find("k", 7, 2, 0).empty());
}

TEST_CASE("the cache keeps within its room, the oldest entries going first") {
  HotCache c;
  const std::string value = "$100\r\n" + std::string(100, 'v') + "\r\n";
  // Each entry costs its key twice, its reply and 96 bytes: 2 + 108 + 96 = 206 bytes.
  const size_t room = 3 * 206;
  for (const char* k : {"a", "b", "c"}) read_through(c, k, value, 0, 100, room);
  CHECK(c.keys() == 3);
  CHECK(c.bytes() == room);
  read_through(c, "d", value, 1, 100, room);
  CHECK(c.keys() == 3);
  CHECK(c.find("a", 7, 2, 1).empty());
  CHECK(c.find("d", 7, 2, 1) == value);
  // A written entry gives up its place.
  c.invalidate("b");
  read_through(c, "e", value, 2, 100, room);
  CHECK(c.find("c", 7, 2, 2) == value);
  read_through(c, "f", value, 50, 100, room);  // c (cached at 0) is the oldest: it goes
  CHECK(c.find("c", 7, 2, 50).empty());
  CHECK(c.keys() == 3);
  // Larger than the whole room: not kept, nothing else lost.
  read_through(c, "huge", "$1000\r\n" + std::string(1000, 'h') + "\r\n", 50, 100, room);
  CHECK(c.find("huge", 7, 2, 50).empty());
  CHECK(c.find("e", 7, 2, 50) == value);
  CHECK(c.find("f", 7, 2, 50) == value);
  c.clear();
  CHECK(c.bytes() == 0);
  CHECK(c.keys() == 0);
}

TEST_CASE("new settings empty the cache once") {
  HotCache c;
  read_through(c, "k", "$1\r\nv\r\n", 0);
  c.settings(0);
  CHECK(c.keys() == 1);
  c.settings(1);
  CHECK(c.keys() == 0);
  read_through(c, "k", "$1\r\nv\r\n", 0);
  c.settings(1);
  CHECK(c.keys() == 1);
}
