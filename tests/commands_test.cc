// Integration tests for the string-range, bit, LCS, RENAME/COPY and OBJECT commands, and for the
// options of SET, GETEX, INCRBYFLOAT, the EXPIRE family, TOUCH, SCAN and FLUSHALL/FLUSHDB.
//
// Most checks are differential: the test starts a real redis-server 7.0.15 (REDIS_SERVER_PATH,
// with "databases 1" so that it has ringkv's single database) and ringkv-server side by side,
// sends both the same commands and compares the replies byte for byte (so type, integer, string
// bytes and nesting all count, in RESP2 and RESP3). Explicit assertions document the key cases.
// Where ringkv deliberately differs from Redis, the test says so and asserts ringkv's answer.

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/strings.h"
#include "redis_pair.h"
#include "resp_node.h"

using namespace ringkv::testing;

// ---------------------------------------------------------------- GETRANGE / SUBSTR / SETRANGE

TEST_CASE("GETRANGE and SUBSTR match Redis", "[strings]") {
  Pair p;
  p.script(R"(
set k foobar
getrange k 0 -1
getrange k 0 2
getrange k -3 -1
getrange k -1 -3
getrange k 5 100
getrange k 100 200
getrange k -100 -50
getrange k -100 2
getrange k 0 -100
getrange k 3 1
getrange nokey 0 -1
getrange k x 1
getrange k 1 x
getrange k 9223372036854775807 9223372036854775807
getrange k -9223372036854775808 9223372036854775807
getrange k 9223372036854775808 1
getrange k 01 2
substr k 1 3
substr k -2 -1
substr k
substr k 1 2 3
getrange k 1
set e ""
getrange e 0 -1
getrange e -1 0
set "\x00b\xff" "a\x00b\r\nc"
getrange "\x00b\xff" 1 3
getrange "" 0 -1
)");
  CHECK(p.k.call({"GETRANGE", "k", "-3", "-1"}) == bulk("bar"));
  CHECK(p.k.call({"SUBSTR", "k", "0", "2"}) == bulk("foo"));
  CHECK(p.k.call({"GETRANGE", "k", "-1", "-3"}) == bulk(""));
  CHECK(p.k.call({"GETRANGE", "nokey", "0", "-1"}) == bulk(""));
  CHECK(p.k.call({"GETRANGE", "k", "x", "1"}) ==
        err("ERR value is not an integer or out of range"));
  CHECK(p.k.call({"SUBSTR", "k"}) == err("ERR wrong number of arguments for 'substr' command"));
}

TEST_CASE("SETRANGE matches Redis, including the size limit and padding", "[strings]") {
  Pair p;
  p.script(R"(
set k foobar
setrange k 0 X
get k
setrange k 10 Y
get k
setrange k -1 x
setrange k x x
setrange k 9223372036854775808 x
setrange nk 0 ""
exists nk
setrange nk 3 ab
get nk
setrange k 2 ""
setrange nk2 9223372036854775807 ""
exists nk2
setrange nk2 9223372036854775807 x
setrange nk2 536870912 x
setrange nk2 536870911 ""
set t v ex 100
setrange t 5 z
ttl t
get t
setrange "" 1 "\x00\xff"
get ""
setrange k
setrange k 1 2 3
config set proto-max-bulk-len 1048576
setrange big 1048575 xx
setrange big 1048576 ""
exists big
setrange big 1048575 x
strlen big
getrange big 1048570 -1
append big x
)");
  // Padding with zero bytes, and the TTL survives.
  CHECK(p.k.call({"GET", "t"}) == bulk(std::string("v\0\0\0\0z", 6)));
  CHECK(p.k.call({"SETRANGE", "k", "-1", "x"}) == err("ERR offset is out of range"));
  // A huge offset is refused before anything is allocated.
  CHECK(p.k.call({"SETRANGE", "k", "9223372036854775807", "x"}) ==
        err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
  CHECK(p.ringkv.alive());
}

// ---------------------------------------------------------------- LCS

TEST_CASE("LCS matches Redis in RESP2 and RESP3", "[strings]") {
  Pair p;
  const char* kScript = R"(
set a ohmytext
set b mynewtext
lcs a b
lcs a b len
lcs a b idx
lcs a b idx minmatchlen 4
lcs a b idx minmatchlen 4 withmatchlen
lcs a b idx withmatchlen
lcs a b idx minmatchlen -5
lcs a b withmatchlen
lcs a b minmatchlen 2
lcs a b len idx
lcs a b idx len
lcs a b minmatchlen
lcs a b minmatchlen x
lcs a b foo
lcs a b "IdX\x00zz"
lcs a nokey
lcs nokey nokey2 idx
lcs a
lcs a a idx withmatchlen
set c1 ABCBDAB
set c2 BDCABA
lcs c1 c2 idx withmatchlen
lcs c2 c1 idx withmatchlen
lcs c1 c2
set bin1 "\x00\x01\x02\xff\x00"
set bin2 "\xff\x00\x01\x00"
lcs bin1 bin2 idx withmatchlen
lcs bin1 bin2
)";
  p.script(kScript);
  CHECK(p.k.call({"LCS", "a", "b"}) == bulk("mytext"));
  CHECK(p.k.call({"LCS", "a", "b", "IDX", "WITHMATCHLEN"}) ==
        "*4\r\n$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n"
        "*3\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:6\r\n");
  p.each({"HELLO", "3"});
  p.script(kScript);
  // RESP3: IDX answers a map.
  CHECK(
      p.k.call({"LCS", "a", "b", "IDX", "MINMATCHLEN", "4"}) ==
      "%2\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n$3\r\nlen\r\n:6\r\n");
  p.each({"HELLO", "2"});
  // The dynamic-programming table is bounded by proto-max-bulk-len.
  const std::string a600(600, 'a');
  p.both({"CONFIG", "SET", "proto-max-bulk-len", "1mb"});
  p.both({"SET", "la", a600});
  p.both({"SET", "lb", a600});
  CHECK(p.both({"LCS", "la", "lb", "LEN"}) ==
        err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
  p.both({"SET", "lb", std::string(400, 'a')});
  CHECK(p.both({"LCS", "la", "lb", "LEN"}) == integer(400));
}

// ---------------------------------------------------------------- SETBIT / GETBIT

TEST_CASE("SETBIT and GETBIT match Redis", "[bits]") {
  Pair p;
  p.script(R"(
setbit k 7 1
get k
setbit k 7 1
setbit k 7 0
setbit k 100 1
strlen k
getbit k 100
getbit k 101
getbit k 1000000
getbit nokey 5
setbit k 4294967296 1
setbit k 4294967295 2
setbit k -1 1
setbit k 0 -1
setbit k x 1
setbit k 0 x
setbit k 0 01
setbit k 0 " 1"
setbit k 0 2
getbit k 4294967296
getbit k 4294967295
getbit k -1
getbit k x
setbit n 0 0
get n
set t v ex 100
setbit t 20 1
ttl t
get t
setbit "\x00" 3 1
get "\x00"
setbit k 1
getbit k
getbit k 1 2
set num 255
getbit num 2
setbit num 2 0
get num
set same ab
setbit same 1 1
object encoding same
set sameint 12
setbit sameint 1 0
object encoding sameint
set samebf 12
bitfield samebf set u8 0 49
object encoding samebf
)");
  CHECK(p.k.call({"SETBIT", "k", "4294967296", "1"}) ==
        err("ERR bit offset is not an integer or out of range"));
  CHECK(p.k.call({"SETBIT", "k", "0", "2"}) == err("ERR bit is not an integer or out of range"));
  CHECK(p.k.call({"GET", "n"}) == bulk(std::string(1, '\0')));
}

// ---------------------------------------------------------------- BITCOUNT / BITPOS

TEST_CASE("BITCOUNT matches Redis", "[bits]") {
  Pair p;
  p.script(R"(
set s foobar
bitcount s
bitcount s 0 0
bitcount s 1 1
bitcount s 1 1 byte
bitcount s 5 30 bit
bitcount s 5 30 BIT
bitcount s 0 -1 bit
bitcount s -5 -1 bit
bitcount s -1 -5 bit
bitcount s -1 -5 foo
bitcount s 3 1
bitcount s -100 100
bitcount s 0 -100
bitcount s 0 1 bits
bitcount s 0 1 "bit\x00x"
bitcount s 0
bitcount s 0 1 bit x
bitcount s x 1
bitcount s 1 x
bitcount s 9223372036854775807 9223372036854775807 bit
bitcount s -9223372036854775808 9223372036854775807 bit
bitcount s -9223372036854775808 -9223372036854775807 bit
bitcount nokey
bitcount nokey 0
bitcount nokey a b
bitcount nokey 0 1 foo
bitcount nokey 0 1 2 3
bitcount
set e ""
bitcount e
bitcount e 0 -1
bitcount e 0 -1 bit
set n 12345
bitcount n
)");
  // Redis 7.0 answers 0 for a missing key before it looks at the arguments.
  CHECK(p.k.call({"BITCOUNT", "nokey", "a", "b"}) == integer(0));
  CHECK(p.k.call({"BITCOUNT", "s", "0"}) == err("ERR syntax error"));
  CHECK(p.k.call({"BITCOUNT", "s", "5", "30", "BIT"}) == integer(17));
}

TEST_CASE("BITPOS matches Redis, including the end-given rule for clear bits", "[bits]") {
  Pair p;
  p.script(R"(
set e ""
bitpos e 0
bitpos e 1
bitpos e 0 0
bitpos e 0 0 -1 bit
set f "\xff\xf0\x00"
bitpos f 0
bitpos f 1
bitpos f 0 1
bitpos f 1 2
bitpos f 0 0 0
bitpos f 0 0 -1
bitpos f 1 2 -1
bitpos f 0 5 bit
bitpos f 0 5 20 bit
bitpos f 1 5 20 bit
bitpos f 1 13 20 bit
bitpos f 1 7 11 bit
bitpos f 0 7 11 bit
bitpos f 0 -1 -1 bit
bitpos f 0 0 7 bit
bitpos f 0 0 6 bit
bitpos f 1 16 23 bit
bitpos f 0 -100 100
bitpos f 1 -100 100
bitpos f 0 100
bitpos f 1 100
bitpos f 0 3 1
set g "\xff\xff\xff"
bitpos g 0
bitpos g 0 0
bitpos g 0 1
bitpos g 0 0 -1
bitpos g 0 0 2
bitpos g 0 3 bit
bitpos g 0 3 -1 bit
bitpos g 0 0 5 bit
bitpos g 0 1 byte
bitpos g 1 1 byte
bitpos g 0 1 x y
bitpos g 0 1 2 x
bitpos g 0 1 2 bit x
bitpos g 0 1 2 "BiT\x00"
bitpos g 2
bitpos g -1
bitpos g x
bitpos g 0 x
bitpos g 0 1 x
bitpos g 0 x 2 foo
bitpos g 0 1 x foo
set z "\x00\x00\x00"
bitpos z 1
bitpos z 0
bitpos z 1 0 -1 bit
bitpos z 1 23 23 bit
bitpos nokey 1
bitpos nokey 0
bitpos nokey 1 abc
bitpos nokey 0 1 2 3 4
bitpos
bitpos k
)");
  // No clear bit: without an end the string counts as zero-padded; with an end there is none.
  CHECK(p.k.call({"BITPOS", "g", "0"}) == integer(24));
  CHECK(p.k.call({"BITPOS", "g", "0", "0", "-1"}) == integer(-1));
  CHECK(p.k.call({"BITPOS", "g", "2"}) == err("ERR The bit argument must be 1 or 0."));
  CHECK(p.k.call({"BITPOS", "f", "1", "5", "20", "BIT"}) == integer(5));
}

// ---------------------------------------------------------------- BITOP

TEST_CASE("BITOP matches Redis", "[bits]") {
  Pair p;
  p.script(R"(
set a "\xff\x0f"
set b "\xf0"
bitop and d a b
get d
bitop or d a b
get d
bitop xor d a b
get d
bitop not d a
get d
bitop not d a b
bitop NoT d
bitop nand d a b
bitop and d
bitop "And\x00x" d a b
bitop and d nokey nokey2
exists d
set d x ex 100
bitop or d a
ttl d
get d
bitop and d a nokey
get d
set e ""
bitop not d e
exists d
bitop or d a a a a
bitop xor d a a
get d
bitop and a a b
get a
set n 12
bitop not d n
get d
)");
  CHECK(p.k.call({"BITOP", "NOT", "d", "a", "b"}) ==
        err("ERR BITOP NOT must be called with a single source key."));
  // An empty result deletes the destination.
  p.both({"SET", "d", "x"});
  CHECK(p.both({"BITOP", "AND", "d", "nokey"}) == integer(0));
  CHECK(p.both({"EXISTS", "d"}) == integer(0));
}

// ---------------------------------------------------------------- BITFIELD / BITFIELD_RO

TEST_CASE("BITFIELD and BITFIELD_RO match Redis", "[bits]") {
  Pair p;
  p.script(R"(
bitfield
bitfield bf
bitfield bf get u8 0
exists bf
bitfield bf set u8 0 255
get bf
bitfield bf get u8 0 get i8 0 get u4 4 get i4 4 get u1 0 get i1 0
bitfield bf get i64 0 get u63 0
bitfield bf get u64 0
bitfield bf get i65 0
bitfield bf get i0 0
bitfield bf get x8 0
bitfield bf get "" 0
bitfield bf get u 0
bitfield bf get u08 0
bitfield bf get "u8\x00junk" 0
bitfield bf get i8 -1
bitfield bf get i8 x
bitfield bf get i8 #1
bitfield bf get i8 #-1
bitfield bf get i8 ##1
bitfield bf get i8 4294967288
bitfield bf get i8 4294967296
bitfield bf get i8 #536870911
bitfield bf get i8 #536870912
bitfield bf get i64 #9223372036854775807
bitfield bf get i64 #144115188075855872
bitfield bf get u1 #4294967295
bitfield bf get u2 #4294967295
bitfield bf get i8
bitfield bf get
bitfield bf set i8 0
bitfield bf set i8 0 x
bitfield bf incrby i8 0
bitfield bf incrby i8 0 9223372036854775808
bitfield bf foo
bitfield bf overflow
bitfield bf overflow foo
bitfield bf overflow sat
bitfield bf overflow wrap overflow fail
bitfield bf set i8 0 300 get u8 0
bitfield bf overflow sat set i8 0 300 get u8 0
bitfield bf overflow fail set i8 0 300 get u8 0
bitfield bf overflow sat set i8 0 -300 get u8 0
bitfield bf overflow sat set u8 0 -1 get u8 0
bitfield bf overflow wrap set u8 0 -1 get u8 0
bitfield bf overflow fail set u8 0 -1 get u8 0
bitfield bf set u8 0 100 incrby u8 0 100 incrby u8 0 100 overflow sat incrby u8 0 100 overflow fail incrby u8 0 1 incrby u8 0 -256
bitfield bf set i8 0 100 incrby i8 0 100 overflow sat incrby i8 0 100 incrby i8 0 -1000 overflow fail incrby i8 0 -1 overflow wrap incrby i8 0 -1
bitfield bf set i64 0 9223372036854775807 incrby i64 0 1 get i64 0
bitfield bf overflow sat set i64 0 9223372036854775807 incrby i64 0 1 incrby i64 0 -9223372036854775808 incrby i64 0 -9223372036854775808 incrby i64 0 -9223372036854775808
bitfield bf overflow fail set i64 0 -9223372036854775808 incrby i64 0 -1 incrby i64 0 9223372036854775807 incrby i64 0 1
bitfield bf set u63 0 9223372036854775807 incrby u63 0 1 overflow sat incrby u63 0 -1 incrby u63 0 9223372036854775807 overflow fail set u63 0 -9223372036854775808
bitfield bf set u63 0 -9223372036854775808 get u63 0
bitfield bf overflow sat set u63 0 -9223372036854775808 get u63 0
bitfield bf set i1 0 1 get i1 0 incrby i1 0 1 overflow sat incrby i1 0 5 incrby i1 0 -5
bitfield bf set u1 7 5 get u1 7 incrby u1 7 1
bitfield bf set i5 #3 -7 get i5 #3 get i5 15 set u13 3 8191 get u16 0 get u16 8
get bf
bitfield nf overflow fail incrby u2 100 10
get nf
bitfield nf2 overflow fail set u2 100 10 set u2 #1 -1
get nf2
bitfield bf get u8 100 set u8 200 1
strlen bf
bitfield_ro bf get u8 0 get i16 0
bitfield_ro bf set u8 0 1
bitfield_ro bf get u8 0 incrby u8 0 1
bitfield_ro bf overflow fail get u8 0
bitfield_ro bf foo
bitfield_ro bf get x 0 set u8 0 1
bitfield_ro nokey get u8 0
bitfield_ro
bitfield bf GeT u8 0 "SeT\x00x" u8 0 1 overflow "SaT\x00q"
set t v ex 100
bitfield t set u8 100 1
ttl t
bitfield t get u8 0
bitfield bf set i8 0 x set i8 0 1
bitfield bf set i8 0 1 set x 0 1
set num 65535
bitfield num get u8 0 incrby u8 8 1
get num
)");
  CHECK(p.k.call({"BITFIELD_RO", "bf", "SET", "u8", "0", "1"}) ==
        err("ERR BITFIELD_RO only supports the GET subcommand"));
  CHECK(p.k.call({"BITFIELD", "bf", "GET", "u64", "0"}) ==
        err("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported "
            "but i64 is."));
  CHECK(p.k.call({"BITFIELD", "bf", "OVERFLOW", "x"}) ==
        err("ERR Invalid OVERFLOW type specified"));
  CHECK(p.k.call({"BITFIELD", "x", "SET", "u8", "0", "255", "INCRBY", "u8", "0", "1", "OVERFLOW",
                  "FAIL", "INCRBY", "u8", "0", "-1"}) == arr({integer(0), integer(0), kNil}));
}

TEST_CASE("Bit and range writes signal WATCH exactly when Redis does", "[bits][watch]") {
  Pair p;
  Client r2(p.redis.port()), k2(p.ringkv.port());
  struct Case {
    Args setup, op;
  };
  const std::vector<Case> cases = {
      {{"SET", "k", "\x01"}, {"SETBIT", "k", "7", "1"}},  // no change: not signalled
      {{"SET", "k", "\x01"}, {"SETBIT", "k", "7", "0"}},
      {{"SET", "k", "\x01"}, {"SETBIT", "k", "8", "0"}},  // grows
      {{"DEL", "k"}, {"SETBIT", "k", "0", "0"}},
      {{"SET", "k", "abc"}, {"SETRANGE", "k", "0", ""}},
      {{"SET", "k", "abc"}, {"SETRANGE", "k", "0", "a"}},
      {{"SET", "k", "abc"}, {"BITFIELD", "k", "GET", "u2", "0"}},
      {{"SET", "k", "abc"}, {"BITFIELD", "k", "SET", "u8", "0", "97"}},  // same value
      {{"SET", "k", "abc"}, {"BITFIELD", "k", "SET", "u8", "0", "98"}},
      {{"SET", "k", "abc"}, {"BITFIELD", "k", "INCRBY", "u8", "0", "0"}},
      {{"SET", "k", "abc"}, {"BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u2", "0", "10"}},
      {{"SET", "k", "abc"}, {"BITFIELD", "k", "SET", "u8", "100", "0"}},
      {{"DEL", "k"}, {"BITOP", "AND", "k", "nokey"}},
      {{"SET", "k", "v"}, {"BITOP", "AND", "k", "nokey"}},
      {{"SET", "k", "v"}, {"RENAME", "k", "k"}},
      {{"SET", "k", "v"}, {"COPY", "k", "k2"}},
      {{"SET", "k", "v"}, {"RENAME", "k", "k3"}},
      {{"SET", "k2", "v"}, {"RENAME", "k2", "k"}},
      {{"SET", "k", "v"}, {"OBJECT", "ENCODING", "k"}},
      {{"SET", "k", "v"}, {"LCS", "k", "k"}},
  };
  for (const Case& c : cases) {
    for (auto [a, b] : {std::pair<Client*, Client*>{&p.r, &r2}, {&p.k, &k2}}) {
      a->call({"FLUSHALL"});
      a->call(c.setup);
      a->call({"WATCH", "k"});
      a->call({"MULTI"});
      a->call({"PING"});
      b->call(c.op);
    }
    INFO(show(c.op));
    const std::string want = p.r.call({"EXEC"});
    CHECK(p.k.call({"EXEC"}) == want);
  }
}

// ---------------------------------------------------------------- RENAME / RENAMENX / COPY

TEST_CASE("RENAME, RENAMENX and COPY match Redis", "[keyspace]") {
  Pair p;
  p.script(R"(
set a 1
rename a b
get a
get b
rename a b
rename b b
renamenx b b
renamenx nokey nokey
rename nokey nokey
set c v ex 100
rename c d
ttl d
ttl c
set e x
renamenx d e
get e
renamenx d f
ttl f
exists d
rename
rename a
rename a b c
set "" empty
rename "" "\x00bin\xff"
get "\x00bin\xff"
exists ""
copy "\x00bin\xff" cp
get cp
copy cp cp
copy cp cp db 0
copy nokey cp
copy nokey nokey
copy f cp
copy f cp replace
ttl cp
get cp
copy f cp db 0 replace
copy f cp db 1
copy f cp db -1
copy f cp db 2147483648
copy f cp db -2147483649
copy f cp db x
copy f cp db
copy f cp foo
copy f cp "REPLACE\x00x"
copy f f db 1
copy nokey nokey db 5
copy nokey x db 0 db 3
copy
copy a
set src 123
set dst old ex 100
rename src dst
ttl dst
get dst
randomkey x
flushall
randomkey
set only one
randomkey
)");
  CHECK(p.k.call({"RENAME", "nokey", "x"}) == err("ERR no such key"));
  CHECK(p.k.call({"COPY", "cp", "cp"}) == err("ERR source and destination objects are the same"));
  // Only database 0 exists.
  CHECK(p.k.call({"COPY", "f", "cp", "DB", "1"}) == err("ERR DB index is out of range"));
}

// ---------------------------------------------------------------- OBJECT

TEST_CASE("OBJECT matches Redis for strings written by SET", "[keyspace]") {
  Pair p;
  p.script(R"(
set sh 123
object encoding sh
object refcount sh
set n 12345
object refcount n
object encoding n
set m -1
object refcount m
object encoding m
set zero 0
object refcount zero
set max 9999
object refcount max
set over 10000
object refcount over
set big 12345678901234567890
object encoding big
set min -9223372036854775808
object encoding min
set big2 123456789012345678901
object encoding big2
set str xyz
object refcount str
object encoding str
set s44 12345678901234567890123456789012345678901234
object encoding s44
set s45 123456789012345678901234567890123456789012345
object encoding s45
set lz 007
object encoding lz
set neg0 -0
object encoding neg0
set plus +1
object encoding plus
set e ""
object encoding e
object encoding nokey
object refcount nokey
object idletime nokey
object freq nokey
object freq str
object foo
object
object encoding
object encoding a b
object help
object help x
object HELP
config set maxmemory-policy allkeys-lfu
object idletime str
object freq nokey
set lf v
object freq lf
get lf
object freq lf
config set maxmemory 100mb
set sh2 123
object refcount sh2
config set maxmemory-policy allkeys-random
set sh3 123
object refcount sh3
config set maxmemory 0
config set maxmemory-policy noeviction
)");
  CHECK(p.k.call({"OBJECT", "ENCODING", "s45"}) == bulk("raw"));
  CHECK(p.k.call({"OBJECT", "REFCOUNT", "sh"}) == integer(2147483647));
  // OBJECT IDLETIME counts whole seconds of the LRU clock (Unix time in seconds), as Redis does:
  // 0 for a key written in the same second as the read, 1 if a second began in between. So it is
  // checked against the wall clock around the write and the read, not against Redis's reply,
  // which depends on where each server's own SET fell.
  for (int i = 0; i < 5; ++i) {
    auto unix_s = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    const int64_t before = unix_s();
    CHECK(p.k.call({"SET", "idle", "x"}) == "+OK\r\n");
    const std::string idle = p.k.call({"OBJECT", "IDLETIME", "idle"});
    const int64_t after = unix_s();
    INFO("OBJECT IDLETIME right after SET: " << printable(idle) << ", seconds passed "
                                             << after - before);
    REQUIRE(idle.size() > 3);
    REQUIRE(idle.front() == ':');
    const int64_t secs = std::stoll(idle.substr(1));
    CHECK(secs >= 0);
    CHECK(secs <= after - before);  // 0 when no second began in between
  }
  CHECK(p.k.call({"OBJECT", "FREQ", "str"}) ==
        err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please "
            "note that when switching between policies at runtime LRU and LFU data will take "
            "some time to adjust."));
  p.each({"HELLO", "3"});
  CHECK(p.both({"OBJECT", "ENCODING", "nokey"}) == kNull3);
  p.both({"OBJECT", "HELP"});
  p.each({"HELLO", "2"});
  // The encoding an earlier write left behind: a value built in place (APPEND to a key,
  // SETRANGE, SETBIT, BITFIELD, BITOP) is "raw" even when short or numeric, INCRBYFLOAT's result
  // is never "int"; a TTL change, RENAME and COPY keep the encoding; SET and INCR reset it.
  p.both({"SET", "ap", "5"});
  p.both({"APPEND", "ap", "5"});
  CHECK(p.both({"OBJECT", "ENCODING", "ap"}) == bulk("raw"));
  p.both({"OBJECT", "REFCOUNT", "ap"});
  p.both({"APPEND", "fresh", "12"});  // a new key: stored as SET would
  CHECK(p.both({"OBJECT", "ENCODING", "fresh"}) == bulk("int"));
  p.both({"SETRANGE", "sr", "0", "12"});
  p.both({"SETBIT", "sb", "1", "1"});
  p.both({"BITFIELD", "bf", "SET", "u8", "0", "49"});
  p.both({"BITOP", "AND", "bo", "ap", "ap"});
  p.both({"SET", "fl", "5"});
  p.both({"INCRBYFLOAT", "fl", "1"});
  p.both({"SET", "fl2", "1.5"});
  p.both({"INCRBYFLOAT", "fl2", "0.5"});
  for (const char* k : {"sr", "sb", "bf", "bo", "fl", "fl2"}) {
    p.both({"OBJECT", "ENCODING", k});
    p.both({"OBJECT", "REFCOUNT", k});
  }
  p.both({"EXPIRE", "ap", "100"});
  CHECK(p.both({"OBJECT", "ENCODING", "ap"}) == bulk("raw"));
  p.both({"PERSIST", "ap"});
  p.both({"RENAME", "ap", "ap2"});
  p.both({"COPY", "ap2", "ap3"});
  for (const char* k : {"ap", "ap2", "ap3"}) p.both({"OBJECT", "ENCODING", k});
  p.both({"INCR", "ap3"});
  CHECK(p.both({"OBJECT", "ENCODING", "ap3"}) == bulk("int"));
  p.both({"SET", "ap2", "5"});
  CHECK(p.both({"OBJECT", "ENCODING", "ap2"}) == bulk("int"));
}

// ---------------------------------------------------------------- options of existing commands

TEST_CASE("SET, GETEX and INCRBYFLOAT options match Redis", "[strings]") {
  Pair p;
  p.script(R"(
set k v ex 10 ex 20
ttl k
set k v ex 10 px 20
set k v px 100000 px 200000
set k v exat 4000000000 exat 4000000001
expiretime k
set k v pxat 4000000000000 pxat 4000000000001
pexpiretime k
set k v keepttl
pexpiretime k
set k v keepttl ex 10
set k v ex 10 keepttl
set k v nx xx
set k v xx nx
set k v nx nx
set k v get get
set k v get nx
set k v get xx
set nk v get xx
set nk v get nx
set k v ex 0
set k v ex -1
set k v ex x
set k v ex 9223372036854775807
set k v ex 9223372036854
set k v px 9223372036854775807
set k v exat 9223372036854775807
set k v pxat 9223372036854775807
set k v pxat 1
get k
set k v ex
set k v persist
set k v foo
set k v "NX\x00y"
set k v "Ex\x00" 100
ttl k
set k v EX 100 GET
getex k
getex nokey
getex nokey ex x
getex k ex x
getex k ex 0
getex k ex 10 px 10
getex k persist
ttl k
getex k persist ex 10
getex k ex 10 persist
getex k keepttl
getex k nx
getex k get
getex k exat 1
exists k
set k v
getex k pxat 4000000000000
pexpiretime k
getex k persist persist
pexpiretime k
getex k "EX\x00" 50
ttl k
set f 10.5
incrbyfloat f 0.1
incrbyfloat f -5
incrbyfloat f 5.0e3
incrbyfloat f abc
incrbyfloat f ""
incrbyfloat f " 1"
incrbyfloat f "1 "
incrbyfloat f inf
incrbyfloat f -inf
incrbyfloat f nan
incrbyfloat f 1e400
incrbyfloat f 0x10
incrbyfloat nf 3
incrbyfloat nf 1.0000000000000001
incrbyfloat nf 0.00000000000000000001
get nf
set ff 1e308
incrbyfloat ff 1e308
set ff abc
incrbyfloat ff 1
set ff "1.5 "
incrbyfloat ff 1
set fx 1.5 ex 100
incrbyfloat fx 1
ttl fx
set e1 5
incrbyfloat e1 -5
incrbyfloat e1 0.1
incrbyfloat e1 1.1e-300
incrbyfloat e1
)");
  CHECK(p.k.call({"SET", "k", "v", "EX", "10", "EX", "20"}) == kOk);
  CHECK(p.k.call({"SET", "k", "v", "EX", "10", "PX", "20"}) == err("ERR syntax error"));
  CHECK(p.k.call({"SET", "k", "v", "EX", "0"}) == err("ERR invalid expire time in 'set' command"));
}

TEST_CASE("EXPIRE options, EXPIRETIME, TOUCH, SCAN TYPE and FLUSHALL/FLUSHDB match Redis",
          "[keyspace]") {
  Pair p;
  p.script(R"(
set k v
expire k 100 nx
expire k 100 nx
expire k 50 xx
ttl k
expire k 40 gt
expire k 60 gt
ttl k
expire k 70 lt
expire k 30 lt
ttl k
expire k 10 nx xx
expire k 10 nx gt
expire k 10 gt lt
expire k 10 xx gt
expire k 10 foo
expire k 10 nx foo
expire k 10 "Gt\x00z"
expire k 10 "foo\x00z"
expire k x
expire k x foo
expire nokey 10
expire nokey 10 xx
expire k 9223372036854775807
expire k -9223372036854775808
expire k 9223372036854775
pexpire k 9223372036854775807
pexpireat k 9223372036854775807
pexpiretime k
expireat k 9223372036854775
persist k
expire k 10 gt
expire k 10 lt
ttl k
persist k
expire k 10 xx
expire k -1 lt
exists k
set k v
expire k 0
exists k
set k v
pexpire k -5 nx
exists k
set k v
expiretime k
pexpiretime k
expiretime nokey
pexpiretime nokey
pexpireat k 4000000000500
expiretime k
pexpireat k 4000000000499
expiretime k
expireat k 1
exists k
set a 1
set b 2
touch a b nokey a
touch
touch nokey
scan 0 type list
scan 0 type
scan 0 count
scan 0 count 0
scan 0 count -1
scan 0 count x
scan 0 match
scan 0 foo
scan x
scan " 0"
scan 18446744073709551616
flushall sync
flushall async
flushall foo
flushall sync async
flushdb sync
flushdb ASYNC
flushdb foo
flushdb "SYNC\x00x"
flushall "a\x00sync"
dbsize
)");
  // EXPIRETIME rounds to the nearest second, as TTL does.
  p.both({"SET", "k", "v"});
  p.both({"PEXPIREAT", "k", "4000000000600"});
  CHECK(p.both({"EXPIRETIME", "k"}) == integer(4000000001));
  // SCAN: the cursors differ (ringkv's walk the token ring) but a full iteration with TYPE finds
  // the same keys.
  p.both({"FLUSHALL"});
  for (int i = 0; i < 50; ++i) p.both({"SET", "key:" + std::to_string(i), "v"});
  for (std::string_view type : {"string", "STRING", "list"}) {
    Client* clients[] = {&p.r, &p.k};
    std::vector<std::string> found[2];
    for (int s = 0; s < 2; ++s) {
      std::string cursor = "0";
      int rounds = 0;
      do {
        Args args = {"SCAN", cursor, "TYPE", std::string(type), "COUNT", "7"};
        std::string reply = clients[s]->call(args);
        // *2 $<n> cursor *<m> $..key..: pick the fields apart.
        size_t c0 = reply.find("\r\n", 4) + 2;
        size_t c1 = reply.find("\r\n", c0);
        cursor = reply.substr(c0, c1 - c0);
        size_t pos = reply.find("\r\n", c1 + 2) + 2;
        while (pos < reply.size()) {
          size_t len_end = reply.find("\r\n", pos);
          size_t len = std::stoul(reply.substr(pos + 1, len_end - pos - 1));
          found[s].push_back(reply.substr(len_end + 2, len));
          pos = len_end + 2 + len + 2;
        }
      } while (cursor != "0" && ++rounds < 1000);
      std::sort(found[s].begin(), found[s].end());
      found[s].erase(std::unique(found[s].begin(), found[s].end()), found[s].end());
    }
    INFO("TYPE " << type);
    CHECK(found[0] == found[1]);
    CHECK(found[1].size() == (type == "list" ? 0u : 50u));
  }
  CHECK(p.both({"SCAN", "", "COUNT", "1000", "TYPE", "list"}) == "*2\r\n$1\r\n0\r\n*0\r\n");
}

// ---------------------------------------------------------------- COMMAND INFO / DOCS

TEST_CASE("COMMAND INFO and DOCS of the new commands match Redis", "[command]") {
  Pair p;
  for (const char* name :
       {"getrange",    "substr",          "setrange",        "lcs",         "setbit",
        "getbit",      "bitcount",        "bitpos",          "bitop",       "bitfield",
        "bitfield_ro", "rename",          "renamenx",        "copy",        "object|encoding",
        "object|freq", "object|idletime", "object|refcount", "object|help", "object"}) {
    INFO(name);
    const Node want = parse(p.r.call({"COMMAND", "INFO", name})).kids.at(0);
    const Node got = parse(p.k.call({"COMMAND", "INFO", name})).kids.at(0);
    REQUIRE(got.kids.size() >= 7);
    // Name, arity, flags, first key, last key, step.
    for (size_t i = 0; i < 6; ++i) CHECK(got.kids[i] == want.kids[i]);
    // ACL categories (a container's own are Redis's per-command data; see the report).
    if (std::string_view(name) != "object") CHECK(got.kids[6] == want.kids[6]);
    const Node dwant = parse(p.r.call({"COMMAND", "DOCS", name}));
    const Node dgot = parse(p.k.call({"COMMAND", "DOCS", name}));
    REQUIRE(dwant.kids.size() == 2);
    REQUIRE(dgot.kids.size() == 2);
    for (const char* f : {"summary", "since", "group", "complexity"}) {
      INFO(f);
      REQUIRE(field(dgot.kids[1], f) != nullptr);
      CHECK(*field(dgot.kids[1], f) == *field(dwant.kids[1], f));
    }
  }
  // The keys of the two-key commands, as routing sees them.
  CHECK(p.both({"COMMAND", "GETKEYS", "RENAME", "a", "b"}) == arr({bulk("a"), bulk("b")}));
  CHECK(p.both({"COMMAND", "GETKEYS", "BITOP", "AND", "d", "s1", "s2"}) ==
        arr({bulk("d"), bulk("s1"), bulk("s2")}));
  CHECK(p.both({"COMMAND", "GETKEYS", "OBJECT", "ENCODING", "k"}) == arr({bulk("k")}));
  p.both({"COMMAND", "GETKEYS", "LCS", "a", "b", "IDX"});
  p.both({"COMMAND", "GETKEYS", "COPY", "a", "b", "DB", "0"});
}

// ---------------------------------------------------------------- arity of every new command

TEST_CASE("Wrong arity of the new commands matches Redis", "[arity]") {
  Pair p;
  for (const Args& args : std::vector<Args>{{"getrange"},
                                            {"getrange", "k", "0"},
                                            {"getrange", "k", "0", "1", "2"},
                                            {"substr", "k", "0"},
                                            {"setrange", "k", "0"},
                                            {"setrange", "k", "0", "v", "x"},
                                            {"lcs", "a"},
                                            {"setbit", "k", "0"},
                                            {"setbit", "k", "0", "1", "2"},
                                            {"getbit", "k"},
                                            {"getbit", "k", "0", "1"},
                                            {"bitcount"},
                                            {"bitpos", "k"},
                                            {"bitop", "and", "d"},
                                            {"bitfield"},
                                            {"bitfield_ro"},
                                            {"rename", "a"},
                                            {"rename", "a", "b", "c"},
                                            {"renamenx", "a"},
                                            {"copy", "a"},
                                            {"object"},
                                            {"object", "encoding"},
                                            {"object", "freq", "a", "b"},
                                            {"object", "idletime"},
                                            {"object", "refcount"},
                                            {"object", "help", "x"},
                                            {"object", "nosuch"},
                                            {"GETRANGE"},
                                            {"ObJeCt", "EnCoDiNg"}}) {
    p.both(args);
  }
}

// ---------------------------------------------------------------- unknown commands

TEST_CASE("Commands for types ringkv does not store are unknown commands", "[unknown]") {
  ServerProcess server;
  Client c(server.port());
  for (const Args& args : std::vector<Args>{
           {"LPUSH", "a", "b"},
           {"HSET", "a", "b", "c"},
           {"SADD", "a", "b"},
           {"ZADD", "a", "1", "b"},
           {"XADD", "s", "*", "a", "b"},
           {"EVAL", "return 1", "0"},
           {"PUBLISH", "c", "m"},
           {"SUBSCRIBE", "c"},
           {"MODULE", "LIST"},
           {"FUNCTION", "LIST"},
           {"PFADD", "h", "a"},
           {"GEOADD", "g", "1", "2", "m"},
           {"BLPOP", "a", "0"},
       }) {
    std::string want = "-ERR unknown command '" + args[0] + "', with args beginning with: ";
    for (size_t i = 1; i < args.size(); ++i) want += "'" + args[i] + "' ";
    want += "\r\n";
    CHECK(c.call(args) == want);
  }
  // Redis formats the name and arguments with %s: each stops at its first NUL byte, and CR/LF
  // become spaces.
  CHECK(c.call({std::string("foo\0bar", 7), std::string("a\0b", 3), "c"}) ==
        "-ERR unknown command 'foo', with args beginning with: 'a' 'c' \r\n");
  CHECK(c.call({"foo\rbar", "a\nb"}) ==
        "-ERR unknown command 'foo bar', with args beginning with: 'a b' \r\n");
  // The server keeps working, on the same connection and on a new one.
  CHECK(c.call({"PING"}) == "+PONG\r\n");
  CHECK(c.call({"SET", "k", "v"}) == kOk);
  Client c2(server.port());
  CHECK(c2.call({"GET", "k"}) == bulk("v"));
  CHECK(server.alive());
}

// ---------------------------------------------------------------- randomized differential test

namespace {

// A random operation over a few keys, shaped to reach the edges: short values with zero and
// 0xff bytes, offsets around byte boundaries, negative ranges, extreme BITFIELD values.
class OpGenerator {
 public:
  explicit OpGenerator(uint64_t seed) : rng_(seed) {}

  Args next() {
    switch (pick(11)) {
      case 0:
        return {"SETRANGE", key(), std::to_string(pick(40)), value()};
      case 1:
        return {"GETRANGE", key(), index(), index()};
      case 2: {
        Args a = {"BITCOUNT", key()};
        if (pick(4) != 0) {
          a.push_back(index());
          a.push_back(index());
          if (pick(2)) a.push_back(pick(2) ? "BIT" : "BYTE");
        }
        return a;
      }
      case 3: {
        Args a = {"BITPOS", key(), std::to_string(pick(2))};
        const int n = static_cast<int>(pick(4));
        if (n >= 1) a.push_back(index());
        if (n >= 2) a.push_back(index());
        if (n >= 3) a.push_back(pick(2) ? "BIT" : "BYTE");
        return a;
      }
      case 4: {
        static const char* kOps[] = {"AND", "OR", "XOR", "NOT"};
        const char* op = kOps[pick(4)];
        Args a = {"BITOP", op, key()};
        const size_t n = std::string_view(op) == "NOT" ? 1 : 1 + pick(3);
        for (size_t i = 0; i < n; ++i) a.push_back(key());
        return a;
      }
      case 5:
      case 6:
        return bitfield(pick(4) == 0 ? "BITFIELD_RO" : "BITFIELD");
      case 7:
        return {"SETBIT", key(), std::to_string(pick(200)), std::to_string(pick(2))};
      case 8:
        return {"GETBIT", key(), std::to_string(pick(200))};
      case 9:
        return pick(3) == 0 ? Args{"DEL", key()} : Args{"SET", key(), value()};
      default:
        return {"GET", key()};
    }
  }

 private:
  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  std::string key() {
    static const std::string kKeys[] = {"a", "b", "c", std::string("\0k", 2)};
    return kKeys[pick(4)];
  }
  std::string value() {
    std::string v(pick(12), '\0');
    for (char& c : v) {
      const uint64_t r = pick(4);
      c = static_cast<char>(r == 0 ? 0 : r == 1 ? 0xff : static_cast<int>(pick(256)));
    }
    return v;
  }
  std::string index() {
    static const int64_t kEdges[] = {0, 1, -1, 7, 8, -8, -9, 100, -100, INT64_MAX, INT64_MIN};
    if (pick(3) == 0) return std::to_string(kEdges[pick(11)]);
    return std::to_string(static_cast<int64_t>(pick(60)) - 30);
  }
  Args bitfield(const char* name) {
    Args a = {name, key()};
    const size_t n = 1 + pick(4);
    for (size_t i = 0; i < n; ++i) {
      if (pick(5) == 0) {
        static const char* kModes[] = {"WRAP", "SAT", "FAIL"};
        a.insert(a.end(), {"OVERFLOW", kModes[pick(3)]});
      }
      const bool is_signed = pick(2);
      const uint64_t bits = 1 + pick(is_signed ? 64 : 63);
      std::string type = (is_signed ? "i" : "u") + std::to_string(bits);
      std::string offset =
          pick(3) == 0 ? "#" + std::to_string(pick(20)) : std::to_string(pick(160));
      static const char* kCmds[] = {"GET", "SET", "INCRBY"};
      const char* cmd = kCmds[pick(3)];
      a.insert(a.end(), {cmd, type, offset});
      if (std::string_view(cmd) != "GET") a.push_back(number(bits));
    }
    return a;
  }
  std::string number(uint64_t bits) {
    static const int64_t kEdges[] = {0, 1, -1, INT64_MAX, INT64_MIN, 127, 128, -128, 255, 256};
    if (pick(3) == 0) return std::to_string(kEdges[pick(10)]);
    const int64_t span = bits >= 62 ? INT64_MAX : (int64_t{1} << (bits + 1));
    return std::to_string(std::uniform_int_distribution<int64_t>(-span, span)(rng_));
  }

  std::mt19937_64 rng_;
};

}  // namespace

TEST_CASE("Random bit and range operations give Redis's replies", "[random]") {
  Pair p;
  OpGenerator gen(20240611);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int ops = 0, errors = 0;
  for (; ops < 4000 && std::chrono::steady_clock::now() < deadline; ++ops) {
    const Args args = gen.next();
    const std::string want = p.r.call(args);
    const std::string got = p.k.call(args);
    if (!want.empty() && want[0] == '-') ++errors;
    if (got != want) {
      INFO("op #" << ops << ": " << show(args));
      INFO("redis:  " << printable(want));
      INFO("ringkv: " << printable(got));
      REQUIRE(got == want);
    }
    // Now and then, compare every key's whole value.
    if (ops % 100 == 99) {
      for (const std::string& key : {std::string("a"), std::string("b"), std::string("\0k", 2)})
        REQUIRE(p.k.call({"GET", key}) == p.r.call({"GET", key}));
    }
  }
  CHECK(ops >= 1000);
  // The generator exercises the working paths, not only the error replies.
  CHECK(errors < ops / 4);
}
