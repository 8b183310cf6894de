// plan_tool: what a ring change moves, predicted with the ring library alone (no server): the
// ranges each server gains in ring::diff(before, after) and, for a given set of keys, how many
// keys and bytes each gainer receives. bench/migration.sh divides what the cluster really moved
// by this ideal.
//
//   plan_tool --before n1,n2,n3 --after n1,n2,n3,n4 [--replicas 3] [--vnodes 1024]
//             (--pattern 'key:%d' --count 1000000 | --keys-file FILE) [--value-size 64]
//
// Servers are "id" or "id:weight". With --pattern, "%d" is replaced by 0 .. count-1. The bytes
// of a key are its length plus --value-size (what RING INFO's node_bytes_received counts).
// Output: one "gain <server> ranges <r> keys <k> bytes <b>" line per gainer, then
// "total ranges <r> keys <k> bytes <b>" (every key counted once per server that gains it).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "ringkv/ring.h"
#include "ringkv/token.h"

using namespace ringkv;

namespace {

[[noreturn]] void usage(const char* why) {
  std::fprintf(
      stderr,
      "plan_tool: %s\n"
      "usage: plan_tool --before id[:w],... --after id[:w],... [--replicas N] [--vnodes V]\n"
      "                 (--pattern 'key:%%d' --count N | --keys-file FILE) [--value-size B]\n",
      why);
  std::exit(2);
}

std::vector<ring::ServerSpec> parse_servers(const std::string& list) {
  std::vector<ring::ServerSpec> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string item =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) {
      ring::ServerSpec s;
      size_t colon = item.rfind(':');
      if (colon != std::string::npos) {
        s.id = item.substr(0, colon);
        s.weight = static_cast<uint32_t>(std::strtoul(item.c_str() + colon + 1, nullptr, 10));
      } else {
        s.id = item;
      }
      out.push_back(s);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::shared_ptr<const ring::Ring> build(const std::vector<ring::ServerSpec>& servers,
                                        uint32_t vnodes) {
  ring::RingOptions o;
  o.vnodes = vnodes;
  auto r = ring::Ring::build(servers, o);
  if (!r.is_ok()) usage(r.status().message().c_str());
  return *r;
}

struct Gain {
  std::vector<ring::TokenRange> ranges;  // sorted
  uint64_t keys = 0, bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string before, after, pattern, keys_file;
  uint64_t count = 0, value_size = 0;
  uint32_t replicas = 3, vnodes = 1024;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    std::string v = argv[++i];
    if (a == "--before")
      before = v;
    else if (a == "--after")
      after = v;
    else if (a == "--replicas")
      replicas = static_cast<uint32_t>(std::stoul(v));
    else if (a == "--vnodes")
      vnodes = static_cast<uint32_t>(std::stoul(v));
    else if (a == "--pattern")
      pattern = v;
    else if (a == "--count")
      count = std::stoull(v);
    else if (a == "--keys-file")
      keys_file = v;
    else if (a == "--value-size")
      value_size = std::stoull(v);
    else
      usage(("unknown option " + a).c_str());
  }
  if (before.empty() || after.empty()) usage("--before and --after are required");
  if (pattern.empty() == keys_file.empty())
    usage("give either --pattern (with --count) or --keys-file");
  auto from = build(parse_servers(before), vnodes);
  auto to = build(parse_servers(after), vnodes);
  auto plan = ring::diff(*from, *to, replicas);
  if (!plan.is_ok()) usage(plan.status().message().c_str());

  std::map<std::string, Gain> gains;
  for (const auto& id : plan->servers) {
    Gain g;
    for (const auto& t : plan->gains_of(id)) g.ranges.push_back(t.range);
    if (g.ranges.empty()) continue;
    std::sort(g.ranges.begin(), g.ranges.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    gains.emplace(id, std::move(g));
  }
  auto account = [&](const std::string& key) {
    Token t = token_of(key);
    for (auto& [id, g] : gains) {
      auto it = std::upper_bound(g.ranges.begin(), g.ranges.end(), t,
                                 [](Token x, const ring::TokenRange& r) { return x < r.first; });
      if (it != g.ranges.begin() && std::prev(it)->contains(t)) {
        ++g.keys;
        g.bytes += key.size() + value_size;
      }
    }
  };
  if (!pattern.empty()) {
    size_t hole = pattern.find("%d");
    if (hole == std::string::npos) usage("--pattern must contain %d");
    std::string head = pattern.substr(0, hole), tail = pattern.substr(hole + 2);
    for (uint64_t i = 0; i < count; ++i) account(head + std::to_string(i) + tail);
  } else {
    std::ifstream in(keys_file);
    if (!in) usage(("can't read " + keys_file).c_str());
    std::string line;
    while (std::getline(in, line)) account(line);
  }
  uint64_t ranges = 0, keys = 0, bytes = 0;
  for (const auto& [id, g] : gains) {
    std::printf("gain %s ranges %zu keys %llu bytes %llu\n", id.c_str(), g.ranges.size(),
                static_cast<unsigned long long>(g.keys), static_cast<unsigned long long>(g.bytes));
    ranges += g.ranges.size();
    keys += g.keys;
    bytes += g.bytes;
  }
  std::printf("total ranges %llu keys %llu bytes %llu\n", static_cast<unsigned long long>(ranges),
              static_cast<unsigned long long>(keys), static_cast<unsigned long long>(bytes));
  return 0;
}
