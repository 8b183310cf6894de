// Tests for src/store/dump_payload: Redis's DUMP/RESTORE payloads of string values. Payloads
// written by Redis 7.0.15 are the reference; mutated payloads with a valid checksum must decode
// or be refused, never read out of bounds (run under ASan in CI).
#include "store/dump_payload.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

using namespace ringkv::store;
using namespace std::string_literals;

namespace {

// The footer Redis appends: RDB version (LE) and CRC-64 (LE) of everything before the CRC.
std::string with_footer(std::string body, uint16_t version = kDumpRdbVersion) {
  body.push_back(static_cast<char>(version & 0xff));
  body.push_back(static_cast<char>(version >> 8));
  uint64_t crc = crc64(0, body);
  for (int i = 0; i < 8; ++i) body.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return body;
}

std::string body_of(const std::string& payload) { return payload.substr(0, payload.size() - 10); }

}  // namespace

TEST_CASE("crc64 is Redis's CRC-64 Jones") {
  CHECK(crc64(0, "123456789") == 0xe9c6d914c4b8d9caULL);
  CHECK(crc64(0, "") == 0);
  // Incremental use gives the same result.
  CHECK(crc64(crc64(0, "1234"), "56789") == 0xe9c6d914c4b8d9caULL);
}

TEST_CASE("DUMP payloads are byte for byte what Redis 7.0 writes for values it does not compress") {
  // Each reference is redis-server 7.0.15's DUMP of the same value.
  CHECK(encode_dump("123") == "\x00\xc0{\n\x00H\xe2S\xe1\x00zg\xb9"s);
  CHECK(encode_dump("-70000") == "\x00\xc2\x90\xee\xfe\xff\n\x00(u\xde{\x13\xeb(\x00"s);
  CHECK(encode_dump("-128") ==
        "\x00\xc0\x80\x0a\x00\x99"
        "f2m/\x0c[\xd9"s);
  CHECK(encode_dump("32767") == "\x00\xc1\xff\x7f\x0a\x00IZ7\xda\x17\xf4\xd5+"s);
  CHECK(encode_dump("-2147483648") == "\x00\xc2\x00\x00\x00\x80\x0a\x00\xc7O\x87>3U\x81\x87"s);
  CHECK(encode_dump("9223372036854775807") ==
        "\x00\x13"
        "9223372036854775807\x0a\x00:e~\x94\x81\xe8_\x22"s);
  CHECK(encode_dump("") == "\x00\x00\x0a\x00]\x9b\x5c@\x0f\x7f\xa2\xda"s);
  CHECK(encode_dump("\x00\xff\r\n"s) ==
        "\x00\x04\x00\xff\x0d\x0a\x0a\x00\x8d\x10\xd1\x9e"
        "B\x16\xec"
        "e"s);
  CHECK(encode_dump("hello world, this is text") ==
        "\x00\x19hello world, this is text\n\x00"
        "c\xeb\xdd$\xa5S\"~"s);
  // Not canonical decimals: kept as bytes.
  for (std::string s : {"+1", "01", "-0", " 1", "1 ", "2147483648"}) {
    std::string p = encode_dump(s);
    CHECK(p.substr(1, 1 + s.size()) == std::string(1, static_cast<char>(s.size())) + s);
  }
}

TEST_CASE("encode and decode round-trip at every length boundary") {
  std::mt19937_64 rng(7);
  for (size_t n : {0, 1, 11, 12, 63, 64, 100, 16383, 16384, 70000, 1 << 20}) {
    std::string v(n, '\0');
    for (char& c : v) c = static_cast<char>(rng());
    DecodedDump d = decode_dump(encode_dump(v));
    REQUIRE(d.status == DumpStatus::kOk);
    CHECK(d.value == v);
  }
  for (int64_t i :
       {INT64_MIN, int64_t{INT32_MIN} - 1, int64_t{INT32_MIN}, int64_t{-32769}, int64_t{-32768},
        int64_t{-129}, int64_t{-128}, int64_t{0}, int64_t{127}, int64_t{128}, int64_t{32767},
        int64_t{32768}, int64_t{INT32_MAX}, int64_t{INT32_MAX} + 1, INT64_MAX}) {
    std::string v = std::to_string(i);
    DecodedDump d = decode_dump(encode_dump(v));
    REQUIRE(d.status == DumpStatus::kOk);
    CHECK(d.value == v);
  }
}

TEST_CASE("payloads Redis compresses with LZF decode") {
  // redis-server 7.0.15: DUMP of "a" x 60, and of a mixed repetitive text.
  DecodedDump d = decode_dump(
      "\x00\xc3\x09<\x01"
      "aa\xe0/\x00\x01"
      "aa\x0a\x00\xa6~\x08\xb2\x17\xd0\x97\x80"s);
  REQUIRE(d.status == DumpStatus::kOk);
  CHECK(d.value == std::string(60, 'a'));
  std::string mix;
  for (int i = 0; i < 3; ++i) mix += "abcabcabcabcabcabcabcabcabcabc-hello-abcabcabcabcabc";
  d = decode_dump(
      "\x00\xc3\x1c@\x9c\x03"
      "abca\xe0\x11\x02\x06-hello-\xe0\x12!\xe0\x09\x1a\xe0?3\x01"
      "bc\x0a\x00"
      "EY\xb3"
      "0\xc2\xb6!}"s);
  REQUIRE(d.status == DumpStatus::kOk);
  CHECK(d.value == mix);
}

TEST_CASE("bad footers are refused: short, newer RDB version, wrong checksum") {
  CHECK(decode_dump("").status == DumpStatus::kBadFooter);
  CHECK(decode_dump("short").status == DumpStatus::kBadFooter);
  std::string good = encode_dump("value");
  std::string bad_crc = good;
  bad_crc.back() ^= 1;
  CHECK(decode_dump(bad_crc).status == DumpStatus::kBadFooter);
  std::string bad_body = good;
  bad_body[3] ^= 1;
  CHECK(decode_dump(bad_body).status == DumpStatus::kBadFooter);
  CHECK(decode_dump(with_footer(body_of(good), 12)).status == DumpStatus::kOk);
  CHECK(decode_dump(with_footer(body_of(good), 13)).status == DumpStatus::kBadFooter);
  CHECK(decode_dump(with_footer(body_of(good), 0xffff)).status == DumpStatus::kBadFooter);
}

TEST_CASE("bad objects behind a valid checksum are refused") {
  auto status = [](std::string body) { return decode_dump(with_footer(std::move(body))).status; };
  CHECK(status("") == DumpStatus::kBadFormat);       // no type byte
  CHECK(status("\x00"s) == DumpStatus::kBadFormat);  // no string
  CHECK(status("\x00\x05"
               "abc"s) == DumpStatus::kBadFormat);               // shorter than its length
  CHECK(status("\x00\x40"s) == DumpStatus::kBadFormat);          // 14-bit length cut short
  CHECK(status("\x00\x80\x00\x00"s) == DumpStatus::kBadFormat);  // 32-bit length cut short
  CHECK(status("\x00\x82"s) == DumpStatus::kBadFormat);          // unknown length encoding
  CHECK(status("\x00\xc4"s) == DumpStatus::kBadFormat);          // unknown string encoding
  CHECK(status("\x00\xc2\x01\x02"s) == DumpStatus::kBadFormat);  // int32 cut short
  CHECK(status("\x08\x00"s) == DumpStatus::kBadFormat);          // not an RDB object type
  CHECK(status("\xff\x00"s) == DumpStatus::kBadFormat);
  // LZF: a back reference before the start, a literal run past the input, a length that does
  // not match, a claimed length no input of that size can give (never allocated).
  CHECK(status("\x00\xc3\x02\x05\x20\x00"s) == DumpStatus::kBadFormat);
  CHECK(status("\x00\xc3\x03\x05\x01"
               "a\xe0"s) == DumpStatus::kBadFormat);
  CHECK(status("\x00\xc3\x02\x03\x00"
               "a"s) == DumpStatus::kBadFormat);
  CHECK(status("\x00\xc3\x02\x81\x00\x00\x00\x00\x7f\xff\xff\xff\x00"
               "a"s) == DumpStatus::kBadFormat);
  CHECK(status("\x00\xc3\x02\x80\x7f\xff\xff\xff\x00"
               "a"s) == DumpStatus::kBadFormat);
  // Bytes after the object are ignored, as Redis does.
  DecodedDump d =
      decode_dump(with_footer("\x00\x01"
                              "ajunk"s));
  CHECK(d.status == DumpStatus::kOk);
  CHECK(d.value == "a");
}

TEST_CASE("payloads of other types name the type") {
  struct {
    std::string payload;
    std::string_view type;
  } cases[] = {
      // redis-server 7.0.15's DUMP of a hash, a list, a set and a sorted set.
      {"\x10\x0d\x0d\x00\x00\x00\x02\x00\x81"
       "a\x02\x81"
       "b\x02\xff\x0a\x00\xd9<\x7f\x07(\xf0\xed\xcc"s,
       "hash"},
      {"\x12\x01\x02\x0a\x0a\x00\x00\x00\x01\x00\x81"
       "a\x02\xff\x0a\x00\x09\xb9\xed\xf5\x94\xde\xd9\x95"s,
       "list"},
      {"\x02\x01\x01"
       "a\x0a\x00"
       "b\x96\xe9~D\xd2\x1am"s,
       "set"},
      {"\x11\x0c\x0c\x00\x00\x00\x02\x00\x81"
       "a\x02\x01\x01\xff\x0a\x00\xa8\x05\xce\xb8\xd7\xa9"
       "3\x02"s,
       "zset"},
      {with_footer("\x15"s), "stream"},
      {with_footer("\x07"s), "module"},
  };
  for (const auto& c : cases) {
    DecodedDump d = decode_dump(c.payload);
    CHECK(d.status == DumpStatus::kNotString);
    CHECK(d.type_name == c.type);
  }
}

TEST_CASE("mutated payloads with a valid checksum decode or are refused, within bounds") {
  std::mt19937_64 rng(11);
  std::vector<std::string> seeds;
  for (std::string v : {""s, "7"s, "-300"s, "-70000"s, "hello"s, std::string(100, 'x')})
    seeds.push_back(body_of(encode_dump(v)));
  seeds.push_back(
      "\x00\xc3\x09<\x01"
      "aa\xe0/\x00\x01"
      "aa"s);  // Redis's LZF of "a" x 60
  size_t decoded = 0, refused = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string body = seeds[rng() % seeds.size()];
    for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) {
      size_t at = body.empty() ? 0 : rng() % body.size();
      switch (rng() % 4) {
        case 0:
          if (!body.empty()) body[at] = static_cast<char>(rng());
          break;
        case 1:
          body.insert(body.begin() + static_cast<long>(at), static_cast<char>(rng()));
          break;
        case 2:
          if (!body.empty()) body.erase(at, 1);
          break;
        default:
          body.resize(at);
      }
    }
    DecodedDump d = decode_dump(with_footer(body));
    REQUIRE(d.status != DumpStatus::kBadFooter);
    (d.status == DumpStatus::kOk ? decoded : refused)++;
  }
  // Both outcomes occur, so the mutations reach the decoder's checks.
  CHECK(decoded > 1000);
  CHECK(refused > 1000);
}
