// The ring-aware client's batch path against what a client without the ring can do through one
// node. bench/client_bench.sh starts the cluster and runs this; it can also run on its own:
//
//   client_bench --seed 127.0.0.1:7000 [--keys 100000] [--value-size 64] [--chunk 500]
//                [--rounds 3] [--naive-keys 100000]
//
// For each approach it writes then reads the same KEYS keys and reports ops/s (keys per second):
//   ring-aware put_many / get_many   Client: grouped per primary, pipelined MSET/MGET chunks of
//                                    --chunk keys, groups in parallel. Also with other chunk sizes
//                                    and with the groups run one after the other.
//   one node MSET/MGET               the same chunks, pipelined on one connection to the seed
//                                    (the node splits each chunk across the owners).
//   one node pipelined SET/GET       single commands, pipelined --chunk at a time, one node.
//   one node SET/GET, 1 per RTT      single commands, one round trip each (a naive client).
// Each approach writes its own key prefix, and every read is checked against what was written.
// The figure reported is the best of --rounds runs (fewer for the slow naive path).
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ringkv/client.h"

namespace {

struct Args {
  std::string seed;
  size_t keys = 100000;
  size_t value_size = 64;
  size_t chunk = 500;
  int rounds = 3;
  size_t naive_keys = 100000;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --seed host:port [--keys N] [--value-size B] [--chunk K] [--rounds R] "
               "[--naive-keys N]\n",
               argv0);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    std::string v = argv[++i];
    if (k == "--seed")
      a.seed = v;
    else if (k == "--keys")
      a.keys = std::stoul(v);
    else if (k == "--value-size")
      a.value_size = std::stoul(v);
    else if (k == "--chunk")
      a.chunk = std::stoul(v);
    else if (k == "--rounds")
      a.rounds = std::stoi(v);
    else if (k == "--naive-keys")
      a.naive_keys = std::stoul(v);
    else
      usage(argv[0]);
  }
  if (a.seed.empty() || a.keys == 0 || a.chunk == 0 || a.rounds < 1) usage(argv[0]);
  return a;
}

double seconds_of(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "client_bench: %s\n", what.c_str());
  std::exit(1);
}

struct Data {
  std::vector<std::string> keys;
  std::vector<std::string> values;
  std::vector<std::pair<std::string_view, std::string_view>> items;
};

Data make_data(const std::string& prefix, size_t n, size_t value_size) {
  Data d;
  d.keys.reserve(n);
  d.values.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    d.keys.push_back(prefix + std::to_string(i));
    std::string v = std::to_string(i * 2654435761u) + ":";
    v.resize(value_size, 'x');
    d.values.push_back(std::move(v));
  }
  for (size_t i = 0; i < n; ++i) d.items.emplace_back(d.keys[i], d.values[i]);
  return d;
}

// ---------------------------------------------------------------- one node, raw hiredis

class Node {
 public:
  explicit Node(const std::string& address) {
    size_t colon = address.rfind(':');
    timeval tv{10, 0};
    c_ = redisConnectWithTimeout(address.substr(0, colon).c_str(),
                                 std::stoi(address.substr(colon + 1)), tv);
    if (c_ == nullptr || c_->err) die("cannot connect to " + address);
    redisSetTimeout(c_, tv);
  }
  ~Node() { redisFree(c_); }

  void append(const std::vector<std::string_view>& args) {
    argv_.clear();
    lens_.clear();
    for (auto a : args) {
      argv_.push_back(a.data());
      lens_.push_back(a.size());
    }
    redisAppendCommandArgv(c_, static_cast<int>(args.size()), argv_.data(), lens_.data());
  }
  redisReply* reply() {
    void* r = nullptr;
    if (redisGetReply(c_, &r) != REDIS_OK) die(std::string("connection error: ") + c_->errstr);
    auto* rep = static_cast<redisReply*>(r);
    if (rep->type == REDIS_REPLY_ERROR) die(std::string("error reply: ") + rep->str);
    return rep;
  }

 private:
  redisContext* c_ = nullptr;
  std::vector<const char*> argv_;
  std::vector<size_t> lens_;
};

void check_value(const redisReply* e, const std::string& want, const std::string& key) {
  if (e->type != REDIS_REPLY_STRING || std::string_view(e->str, e->len) != want)
    die("wrong value read for " + key);
}

// Chunks of `chunk` keys as MSET / MGET, with two chunks in flight (as the client does).
void node_batches(Node& node, const Data& d, size_t chunk, bool write) {
  size_t n = d.keys.size(), chunks = (n + chunk - 1) / chunk;
  auto append = [&](size_t k) {
    std::vector<std::string_view> args = {write ? "MSET" : "MGET"};
    for (size_t i = k * chunk; i < std::min(n, (k + 1) * chunk); ++i) {
      args.push_back(d.keys[i]);
      if (write) args.push_back(d.values[i]);
    }
    node.append(args);
  };
  append(0);
  for (size_t k = 0; k < chunks; ++k) {
    if (k + 1 < chunks) append(k + 1);
    redisReply* r = node.reply();
    if (!write) {
      for (size_t i = k * chunk; i < std::min(n, (k + 1) * chunk); ++i)
        check_value(r->element[i - k * chunk], d.values[i], d.keys[i]);
    }
    freeReplyObject(r);
  }
}

// Single SET / GET commands, `depth` in flight (depth 1: one per round trip).
void node_singles(Node& node, const Data& d, size_t n, size_t depth, bool write) {
  size_t sent = 0, done = 0;
  while (done < n) {
    while (sent < n && sent - done < depth) {
      if (write)
        node.append({"SET", d.keys[sent], d.values[sent]});
      else
        node.append({"GET", d.keys[sent]});
      ++sent;
    }
    redisReply* r = node.reply();
    if (!write) check_value(r, d.values[done], d.keys[done]);
    freeReplyObject(r);
    ++done;
  }
}

// ---------------------------------------------------------------- the client

std::unique_ptr<ringkv::Client> open_client(const std::string& seed, size_t chunk, size_t threads) {
  ringkv::ClientOptions o;
  o.seeds = {seed};
  o.batch_chunk_keys = chunk;
  o.batch_threads = threads;
  o.command_timeout_ms = 30000;
  auto c = ringkv::Client::open(o);
  if (!c) die("cannot open the client: " + c.status().to_string());
  return std::move(c).value();
}

void client_put(ringkv::Client& c, const Data& d) {
  ringkv::Status s = c.put_many(d.items);
  if (!s) die("put_many: " + s.to_string());
}

void client_get(ringkv::Client& c, const Data& d) {
  auto r = c.get_many(d.keys);
  if (!r) die("get_many: " + r.status().to_string());
  for (size_t i = 0; i < d.keys.size(); ++i)
    if ((*r)[i] != std::optional<std::string>(d.values[i])) die("wrong value for " + d.keys[i]);
}

struct Row {
  std::string name;
  double put_ops = 0, get_ops = 0;
};

// Best of `rounds` for the write then the read of n keys.
Row measure(const std::string& name, size_t n, int rounds, const std::function<void()>& put,
            const std::function<void()>& get) {
  double best_put = 1e30, best_get = 1e30;
  for (int r = 0; r < rounds; ++r) {
    best_put = std::min(best_put, seconds_of(put));
    best_get = std::min(best_get, seconds_of(get));
  }
  Row row{name, static_cast<double>(n) / best_put, static_cast<double>(n) / best_get};
  std::printf("  %-44s put %10.0f ops/s   get %10.0f ops/s\n", name.c_str(), row.put_ops,
              row.get_ops);
  std::fflush(stdout);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  auto client = open_client(a.seed, a.chunk, 4);
  auto topo = client->topology();
  std::printf(
      "client_bench: %zu keys, %zu-byte values, chunk %zu, best of %d; ring of %zu "
      "servers, N=%u, epoch %llu\n",
      a.keys, a.value_size, a.chunk, a.rounds, topo.server_ids.size(), topo.replicas,
      static_cast<unsigned long long>(topo.epoch));

  std::vector<Row> rows;
  {
    Data d = make_data("ring:", a.keys, a.value_size);
    rows.push_back(measure(
        "ring-aware put_many/get_many", a.keys, a.rounds, [&] { client_put(*client, d); },
        [&] { client_get(*client, d); }));
  }
  // The choices behind the defaults: chunk size, and groups in parallel or not.
  for (size_t chunk : {size_t{1}, size_t{50}, size_t{2000}}) {
    if (chunk == a.chunk) continue;
    auto c = open_client(a.seed, chunk, 4);
    Data d = make_data("ring" + std::to_string(chunk) + ":", a.keys, a.value_size);
    rows.push_back(measure(
        "  (chunk " + std::to_string(chunk) + " keys)", a.keys, a.rounds,
        [&] { client_put(*c, d); }, [&] { client_get(*c, d); }));
  }
  {
    auto c = open_client(a.seed, a.chunk, 0);
    Data d = make_data("ringseq:", a.keys, a.value_size);
    rows.push_back(measure(
        "  (groups one after the other)", a.keys, a.rounds, [&] { client_put(*c, d); },
        [&] { client_get(*c, d); }));
  }
  Node node(a.seed);
  {
    Data d = make_data("mset:", a.keys, a.value_size);
    rows.push_back(measure(
        "one node, MSET/MGET chunks, pipelined", a.keys, a.rounds,
        [&] { node_batches(node, d, a.chunk, true); },
        [&] { node_batches(node, d, a.chunk, false); }));
  }
  {
    Data d = make_data("pipe:", a.keys, a.value_size);
    rows.push_back(measure(
        "one node, SET/GET pipelined " + std::to_string(a.chunk) + " deep", a.keys, a.rounds,
        [&] { node_singles(node, d, a.keys, a.chunk, true); },
        [&] { node_singles(node, d, a.keys, a.chunk, false); }));
  }
  Row naive;
  {
    size_t n = std::min(a.naive_keys, a.keys);
    Data d = make_data("naive:", n, a.value_size);
    naive = measure(
        "one node, SET/GET one per round trip (" + std::to_string(n) + " keys)", n, 1,
        [&] { node_singles(node, d, n, 1, true); }, [&] { node_singles(node, d, n, 1, false); });
    rows.push_back(naive);
  }
  const Row& ring = rows.front();
  std::printf(
      "ring-aware batch path over single commands through one node: put %.1fx, get %.1fx "
      "(target >= 2x)\n",
      ring.put_ops / naive.put_ops, ring.get_ops / naive.get_ops);
  const Row* one_node_batches = nullptr;
  for (const auto& r : rows)
    if (r.name.starts_with("one node, MSET")) one_node_batches = &r;
  if (one_node_batches != nullptr) {
    std::printf(
        "ring-aware batch path over the same batches through one node: put %.1fx, get "
        "%.1fx\n",
        ring.put_ops / one_node_batches->put_ops, ring.get_ops / one_node_batches->get_ops);
  }
  // Leave the cluster as we found it.
  for (const char* p :
       {"ring:", "ring1:", "ring50:", "ring2000:", "ringseq:", "mset:", "pipe:", "naive:"}) {
    Data d =
        make_data(p, std::string_view(p) == "naive:" ? std::min(a.naive_keys, a.keys) : a.keys, 0);
    (void)client->remove_many(d.keys);
  }
  return 0;
}
