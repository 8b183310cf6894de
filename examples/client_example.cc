// A tour of the ringkv C++ client: connect through one seed, write and read single keys and
// batches, handle "not found" apart from errors, and show where keys live.
//
//   ringkv_client_example 127.0.0.1:6379 [password]
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "ringkv/client.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <host:port> [password]\n", argv[0]);
    return 2;
  }
  ringkv::ClientOptions options;
  options.seeds = {argv[1]};
  if (argc > 2) options.password = argv[2];

  auto opened = ringkv::Client::open(options);
  if (!opened) {
    std::fprintf(stderr, "cannot open the client: %s\n", opened.status().to_string().c_str());
    return 1;
  }
  std::unique_ptr<ringkv::Client> client = std::move(opened).value();

  ringkv::ClientTopology topology = client->topology();
  std::printf("ring epoch %llu, %zu servers, %u copies of each key\n",
              static_cast<unsigned long long>(topology.epoch), topology.server_ids.size(),
              topology.replicas);

  // Single keys: values are bytes, so binary data and empty values are fine.
  if (ringkv::Status s = client->put("example:greeting", "hello, ring"); !s) {
    std::fprintf(stderr, "put failed: %s\n", s.to_string().c_str());
    return 1;
  }
  ringkv::Result<std::string> value = client->get("example:greeting");
  if (value) std::printf("example:greeting = %s\n", value->c_str());

  ringkv::Result<std::string> missing = client->get("example:nobody-wrote-this");
  if (!missing && missing.status().code() == ringkv::Code::kNotFound)
    std::printf("example:nobody-wrote-this is not set (not an error)\n");
  else if (!missing)
    std::fprintf(stderr, "get failed: %s\n", missing.status().to_string().c_str());

  // Where a key lives: its preference list, primary first.
  std::vector<std::string> owners = client->owners("example:greeting");
  std::printf("example:greeting lives on");
  for (const auto& id : owners) std::printf(" %s", id.c_str());
  std::printf("\n");

  // Batches: grouped per server, pipelined, sent in parallel.
  std::vector<std::pair<std::string, std::string>> items;
  for (int i = 0; i < 1000; ++i)
    items.emplace_back("example:batch:" + std::to_string(i), "value " + std::to_string(i));
  if (ringkv::Status s = client->put_many(items); !s) {
    std::fprintf(stderr, "put_many failed: %s\n", s.to_string().c_str());
    return 1;
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : items) keys.push_back(k);
  keys.push_back("example:batch:missing");
  auto values = client->get_many(keys);
  if (!values) {
    std::fprintf(stderr, "get_many failed: %s\n", values.status().to_string().c_str());
    return 1;
  }
  size_t found = 0;
  for (const auto& v : *values) found += v.has_value() ? 1 : 0;
  std::printf("get_many: %zu of %zu keys found\n", found, keys.size());

  auto removed = client->remove_many(keys);
  if (removed) std::printf("remove_many: %zu keys removed\n", *removed);
  (void)client->remove("example:greeting");
  return 0;
}
