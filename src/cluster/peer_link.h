// A pipelined connection from one event loop to another node, for forwarded commands,
// replication and migration reads. Loop thread only.
//
// Requests are queued and written together at the end of the loop turn (one write per peer per
// turn, however many clients' commands go to that peer). Replies come back in order and are
// handed to the callbacks as raw RESP bytes. If the connection fails, every pending callback is
// called with ok=false; the next request reconnects (after a short back-off while the peer is
// unreachable, requests fail at once instead of queueing).
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "net/loop.h"

namespace ringkv::cluster {

class PeerLink {
 public:
  // reply: the raw RESP reply when ok, else a human-readable reason.
  using Callback = std::function<void(bool ok, std::string_view reply)>;

  struct Options {
    std::string my_id;
    std::string password;  // sent with AUTH when not empty
    int protocol = 2;      // 3: the link says HELLO 3 first (for RESP3 clients' forwarded commands)
    // A request unanswered this long after it went out, while nothing at all came from the
    // peer for as long, fails the connection; unless peer_live says the peer still answers
    // heartbeats: a live peer busy with a large request (a value of hundreds of MB to store and
    // replicate) gets up to live_timeout_ms.
    int timeout_ms = 5000;
    int live_timeout_ms = 60000;
    std::function<bool()> peer_live;
    int backoff_ms = 200;  // after a failed connect, fail fast this long
    // Called (on the link's loop) when a connection fails or cannot be made: a hint that the
    // peer may be down, so liveness is checked now rather than at the next heartbeat.
    std::function<void()> on_broken;
    // While the link's loop is saturated, requests wait up to this long for the next turns'
    // requests to the same peer, to go out in one write (see flush_or_hold); 0: never wait.
    uint32_t hold_max_us = 500;
  };

  PeerLink(net::EventLoop& loop, std::string peer_id, std::string address, Options options);
  ~PeerLink();
  PeerLink(const PeerLink&) = delete;
  PeerLink& operator=(const PeerLink&) = delete;

  const std::string& peer_id() const { return peer_id_; }
  const std::string& address() const { return address_; }
  void set_address(const std::string& address);
  // The password the next connection authenticates with (the current one stays).
  void set_password(std::string password) { options_.password = std::move(password); }

  // The reply given to cb is valid only during the call.
  void send(const std::vector<std::string_view>& args, Callback cb);
  // `request` is one encoded command (RESP multibulk).
  void send_encoded(std::string_view request, Callback cb);

  // Tells the peer, ahead of the requests that follow on this link, which configuration epoch
  // they were routed with (sent only when it changes, and again after a reconnect).
  void announce_epoch(uint64_t epoch);

  bool connected() const { return state_ == State::kConnected; }
  size_t pending() const { return pending_.size(); }

  static void encode(const std::vector<std::string_view>& args, std::string* out);

 private:
  enum class State { kIdle, kConnecting, kConnected, kClosing };
  struct Handle;     // the libuv handle, freed in its close callback
  struct Resolving;  // a host name being resolved
  struct Pending {
    Callback cb;
    Micros sent_us;
    bool internal;       // handshake reply: not given to anyone
    bool hello = false;  // RINGKV.HELLO's: an error there makes the connection unusable
  };

  // False (and cb called with a failure) while a failed peer is in its back-off; else connects
  // if need be.
  bool ready_to_send(const Callback& cb);
  // The request's bytes are in out_: queue its callback and schedule the write.
  void queued(Callback cb);
  // Starts a connection: resolves the peer's host name first if it is not a literal IP.
  void connect();
  void connect_to(const sockaddr* addr);
  void on_connected(int status);
  void on_read(ssize_t nread, const uv_buf_t* buf);
  void fail_all(const std::string& why);
  // What a request's callback is told when the connection failed for `why`.
  std::string failure(const std::string& why) const;
  void close_connection(const std::string& why);
  void schedule_flush();
  void flush_or_hold(const std::weak_ptr<bool>& alive);
  void flush();
  void check_timeouts();

  net::EventLoop& loop_;
  std::string peer_id_;
  std::string address_;
  Options options_;
  State state_ = State::kIdle;
  Handle* handle_ = nullptr;
  std::string out_;   // queued request bytes
  std::string wbuf_;  // bytes in flight in uv_write
  bool writing_ = false;
  bool flush_scheduled_ = false;
  uint64_t held_since_ns_ = 0;  // when flush_or_hold first held the queued requests back; 0: not
  std::string in_;              // unparsed reply bytes
  std::deque<Pending> pending_;
  Micros failed_at_us_ = 0;
  uint64_t last_read_ms_ = 0;  // loop time of the last bytes read from the peer
  // Loop time of the last bytes the peer took (a write began, completed, or its queue shrank,
  // as check_timeouts saw it), and the write queue's size then.
  uint64_t last_write_ms_ = 0;
  size_t write_queue_seen_ = 0;
  uint64_t announced_epoch_ = 0;
  uint64_t attempt_ = 0;  // connections started, so a late name resolution can tell it is stale
  std::string last_error_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unique_ptr<net::Timer> timer_;
};

}  // namespace ringkv::cluster
