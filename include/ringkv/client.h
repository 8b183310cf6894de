// The ringkv C++ client: put, get and remove on arbitrary bytes, batches of them, and the two ring
// changes (add a server, remove a server), against a ringkv cluster.
//
// The client is ring-aware. It reads the cluster's ring configuration (RING CONFIG), builds the
// same consistent-hash ring the servers build (ringkv/ring.h), and sends every key straight to
// its primary, so a request costs one network hop instead of two. Batches are grouped per server,
// pipelined, and sent to the servers in parallel. When the configuration changes (a periodic
// check sees a new epoch, a server asks the client to try again, or a primary cannot be
// reached), the client fetches it again. Routing is an optimisation, never a correctness
// condition: every node accepts every key and forwards it to its owner, so a stale ring only
// costs a hop.
//
// Example:
//
//   ringkv::ClientOptions options;
//   options.seeds = {"127.0.0.1:6379"};
//   auto client = ringkv::Client::open(options);
//   if (!client) { std::cerr << client.status().to_string() << "\n"; return 1; }
//   ringkv::Status s = (*client)->put("greeting", "hello");
//   ringkv::Result<std::string> v = (*client)->get("greeting");
//   if (v) std::cout << *v << "\n";
//   else if (v.status().code() == ringkv::Code::kNotFound) std::cout << "(not set)\n";
//
// Errors are values (ringkv/status.h); no method throws. Codes a method returns:
//   kNotFound         get(): the key does not exist (not an error of the cluster).
//   kInvalidArgument  the caller passed something malformed (no seeds, a bad address, weight 0).
//   kUnreachable      no connection could be made to any server that could serve the request.
//   kTimedOut         a server accepted the connection but did not answer within
//                     command_timeout_ms. A write that timed out may or may not have been applied.
//   kRefused          a server answered with an error; the message is the server's text, prefixed
//                     with the server's address (e.g. "127.0.0.1:7001: WRONGPASS invalid ...").
//   kIoError          the connection broke mid-request, or the server sent something that is not
//                     a valid reply.
//   kInternal         the ring configuration the server sent could not be used.
// A request that fails on one server is tried on the next (see "Failures" below); when every
// server tried failed, the message lists each server's error and the code is kTimedOut if any of
// them timed out (the outcome of a write is then unknown), else the first code that is not
// kUnreachable (a server's refusal says more than a refused connection), else kUnreachable.
//
// Failures. A key's request goes to its primary; if that server cannot be connected to, times out
// or drops the connection, to the next server of the key's preference list, then to any other
// node (each forwards to the owner). A server that failed is tried last by every request for
// twice command_timeout_ms (at least a second). Replies that mean "not now" (TRYAGAIN: the owner
// did not answer the node, e.g. it just died and the cluster has not noticed yet; CLUSTERDOWN;
// LOADING) are retried, with a short growing pause, for up to retry_window_ms. Any other error
// reply is returned at once as kRefused. Every data request the client sends is idempotent (SET,
// GET, DEL, MSET, MGET), so a retry never changes the data (only a remove count may come out low);
// ring changes are not, and are never resent once sent.
//
// Threads: one Client may be shared by any number of threads; every method is safe to call
// concurrently. Each server has its own pool of connections; a call checks one out for the
// duration of a request and returns it, and no lock is held while waiting on the network.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringkv/status.h"

namespace ringkv {

struct ClientOptions {
  // Addresses ("host:port", IPv6 as "[::1]:7000") of servers to read the ring configuration from
  // at open(). One reachable server is enough; after that the client learns every server from the
  // configuration. Required: at least one, each a valid host:port.
  std::vector<std::string> seeds;

  // Time to establish a TCP connection (and authenticate) to one server. > 0.
  int connect_timeout_ms = 1000;
  // Time a server may take to answer one request (applied to every socket read and write, so a
  // pipelined batch to one server may take longer in total while it keeps making progress). > 0.
  int command_timeout_ms = 5000;

  // Idle connections kept per server. A call that finds none idle opens a new one (it never waits
  // for another thread's connection), and a returned connection beyond this many is closed. >= 1.
  size_t pool_size = 4;

  // Sent with AUTH on every new connection when not empty (the servers' requirepass).
  std::string password;

  // How often a background thread compares the cluster's configuration epoch (RING INFO) with the
  // client's, fetching the configuration when it changed. 0 turns the periodic check off; the
  // client still refreshes when a reply or a connection failure suggests the ring changed. >= 0.
  int refresh_interval_ms = 1000;

  // Threads (besides the caller's) that run the per-server groups of a batch in parallel. 0 runs
  // every group on the calling thread, one after the other. >= 0.
  size_t batch_threads = 4;

  // A batch is sent to each server as pipelined MGET/MSET/DEL commands of at most this many keys
  // (and about 1 MiB of keys and values, whichever comes first). >= 1.
  size_t batch_chunk_keys = 500;

  // How long a request keeps retrying while servers answer that the cluster cannot serve it right
  // now (TRYAGAIN: e.g. a key's owner just failed and the other nodes have not noticed yet;
  // CLUSTERDOWN; LOADING), with a short, growing pause between rounds. 0: every server is tried
  // once, no more. >= 0.
  int retry_window_ms = 5000;
};

// What the client currently knows of the cluster (a snapshot; see Client::topology()).
struct ClientTopology {
  uint64_t epoch = 0;                   // the configuration's epoch
  uint32_t replicas = 0;                // N: length of a key's preference list
  bool migrating = false;               // a ring change is still moving data
  std::vector<std::string> server_ids;  // servers on the ring, sorted by id
  std::vector<std::string> addresses;   // their addresses, same order
};

class Client {
 public:
  // Validates the options, reads the ring configuration from the first seed that answers, and
  // starts the background refresh thread.
  //
  // Errors: kInvalidArgument for bad options (the message names the option); otherwise, when no
  // seed gave a usable configuration, every seed's error in the message, and the code chosen as
  // for any request tried on several servers (above: kTimedOut if one timed out, else the first
  // that is not kUnreachable, else kUnreachable). kRefused: e.g. a wrong password, with the
  // server's text; kInternal: the configuration could not be parsed or built.
  static Result<std::unique_ptr<Client>> open(ClientOptions options);

  // Stops the refresh thread and the batch threads and closes every connection.
  // REQUIRES: no other thread is inside a method of this Client.
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- Single keys. Keys and values are arbitrary bytes (empty allowed); they are copied or sent
  // before the call returns, so the views only need to live for the duration of the call.

  // Stores value under key (SET). OK once the cluster acknowledged it (W copies).
  Status put(std::string_view key, std::string_view value);

  // The value of key. kNotFound when the key does not exist; any other code is a failure to find
  // out. The returned string is the caller's.
  Result<std::string> get(std::string_view key);

  // Deletes key (DEL). The value is true when the key existed, false when it did not.
  Result<bool> remove(std::string_view key);

  // ---- Batches. Keys are grouped by primary, each group pipelined to its server, the groups sent
  // in parallel. A batch is not atomic: on error, some of its writes may have been applied (each
  // write is idempotent, so retrying the whole batch is safe). Duplicate keys are allowed; for
  // put_many the last value of a key in the batch wins.

  // Stores every (key, value). OK when every pair was acknowledged; otherwise the first error
  // met, its message saying how many keys failed.
  Status put_many(std::span<const std::pair<std::string_view, std::string_view>> items);
  Status put_many(std::span<const std::pair<std::string, std::string>> items);

  // The values of keys, in the order of keys: nullopt for a key that does not exist. An error
  // when any key could not be read (then no values are returned).
  Result<std::vector<std::optional<std::string>>> get_many(std::span<const std::string_view> keys);
  Result<std::vector<std::optional<std::string>>> get_many(std::span<const std::string> keys);

  // Deletes keys. The value is how many of them existed (a key listed twice counts once at most;
  // after a retry through another server the count may be lower than the truth).
  Result<size_t> remove_many(std::span<const std::string_view> keys);
  Result<size_t> remove_many(std::span<const std::string> keys);

  // ---- Ring changes (RING ADDSERVER / RING REMOVESERVER, sent to any reachable server). The
  // change is accepted when the call returns OK; its data moves in the background (RING INFO
  // shows the progress). A change made while another one's data is still moving waits for that
  // move first, on the server: the call then blocks until the first move is done (these calls
  // wait up to 610 s for the server's answer, not command_timeout_ms), and is refused (kRefused)
  // if that takes over 600 s. On success the client has already switched to the new ring.

  // Adds server `id` (the --node-id it was started with) at `address` ("host:port" as every node
  // and client can reach it) with `weight` >= 1. kInvalidArgument for an empty id or address or a
  // weight of 0 (checked before sending); kRefused with the server's text when the cluster
  // refuses (duplicate id, unreachable address, a move still under way after 600 s...).
  Status add_server(std::string_view id, std::string_view address, uint32_t weight = 1);

  // Drains server `id` and takes it off the ring. kInvalidArgument for an empty id; kRefused with
  // the server's text when the cluster refuses (unknown id, last server, a move still under way
  // after 600 s...).
  Status remove_server(std::string_view id);

  // ---- Routing (no I/O).

  // The servers that hold key in the client's current ring, primary first (N = replicas entries,
  // fewer when the ring has fewer servers): the ids RING OWNERS returns for the same epoch.
  std::vector<std::string> owners(std::string_view key) const;

  // What the client knows of the cluster right now.
  ClientTopology topology() const;

  // Fetches the ring configuration now (from the servers it knows, then the seeds) and switches
  // to it when its epoch is newer (an older or equal epoch, e.g. from a node that lags, is
  // ignored). OK when a configuration was read, even if unchanged; otherwise the combined error of
  // every server tried.
  Status refresh();

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringkv
