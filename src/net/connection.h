// A client connection: reads requests, hands them to the Service, writes replies in request
// order, even when some replies come later than others (forwarded to a peer, waiting for
// replicas). Loop thread only, except where a method says otherwise.
//
// Replies go to out() while nothing is pending. defer() reserves a place for a reply that comes
// later; replies written after it queue behind it, and everything leaves in order once it is
// completed. Input is read into the loop's shared buffer and parsed in place; only a partial
// request is copied into the connection's own buffer, so idle connections hold no buffers.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "common/clock.h"
#include "net/buffer.h"
#include "net/loop.h"
#include "net/service.h"
#include "net/tls.h"
#include "resp/parser.h"
#include "resp/writer.h"

namespace ringkv::net {

// Limits shared by all connections; the server updates them on CONFIG SET (relaxed atomics).
struct ConnectionLimits {
  std::atomic<int64_t> max_bulk_len{512ll * 1024 * 1024};
  std::atomic<int64_t> query_buffer_limit{1024ll * 1024 * 1024};
  std::atomic<int64_t> obuf_hard{0};  // client-output-buffer-limit normal <hard> <soft> <secs>
  std::atomic<int64_t> obuf_soft{0};
  std::atomic<int64_t> obuf_soft_seconds{0};
  std::atomic<int64_t> tcp_keepalive{300};
};

// Per-loop state shared by the connections of one loop.
struct LoopNet {
  LoopNet(EventLoop& l, Service& s, const ConnectionLimits& lim)
      : loop(l), service(s), limits(lim) {}
  EventLoop& loop;
  Service& service;
  const ConnectionLimits& limits;
  static constexpr size_t kSharedReadSize = 64 * 1024;
  std::unique_ptr<char[]> shared_read{new char[kSharedReadSize]};
  bool shared_busy = false;
  // TLS connections read their records here (allocated with the first one) and decrypt them
  // into shared_read.
  std::unique_ptr<char[]> tls_read;
  bool tls_read_busy = false;
  std::unordered_set<class Connection*> connections;
  std::atomic<size_t> output_bytes{0};  // pending output of this loop's clients (INFO)
  // Totals for INFO stats (relaxed; written by this loop only).
  std::atomic<uint64_t> bytes_in{0}, bytes_out{0}, reads{0}, writes{0};
};

class Connection;

// A reply that will be written later, in its place in the connection's order. Completing it on
// a closed connection does nothing. Dropping it uncompleted writes an error reply, so a bug can
// never wedge a client. Loop thread only.
class Deferred {
 public:
  Deferred() = default;
  Deferred(std::shared_ptr<Connection> conn, uint64_t seq) : conn_(std::move(conn)), seq_(seq) {}
  Deferred(Deferred&& o) noexcept : conn_(std::move(o.conn_)), seq_(o.seq_) {}
  Deferred& operator=(Deferred&& o) noexcept;
  ~Deferred();

  bool valid() const { return conn_ != nullptr; }
  Connection* connection() const { return conn_.get(); }
  // `resp` is the complete encoded reply (one or more RESP values).
  void complete(std::string resp);
  // The same from bytes owned elsewhere: copied once, straight into the output when no earlier
  // reply is still awaited (the usual case).
  void complete_from(std::string_view resp);

 private:
  std::shared_ptr<Connection> conn_;
  uint64_t seq_ = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Takes an accepted, initialised uv_tcp_t's place: call start() once.
  Connection(LoopNet& net, uint64_t id);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  uv_tcp_t* tcp() { return &tcp_; }
  // Makes this a TLS connection (accepted on tls-port). REQUIRES: before start().
  void use_tls(std::shared_ptr<TlsContext> ctx);
  bool tls() const { return tls_ != nullptr; }
  void start(std::shared_ptr<Connection> self);

  uint64_t id() const { return id_; }
  EventLoop& loop() { return net_.loop; }
  const std::string& peer_address() const { return peer_; }
  const std::string& local_address() const { return local_; }
  int fd() const;

  // Where the reply to the current request goes.
  resp::Writer& out() { return writer_; }
  // Holds the current request's place in the reply order for a reply that comes later (forwarded
  // to a peer, waiting on a fetch); later requests' replies queue behind it.
  Deferred defer();
  // True while a deferred reply (of this request or an earlier one) is still awaited.
  bool awaiting_replies() const { return !slots_.empty(); }
  // Calls fn on this connection's loop (posted) once no deferred reply is awaited, soon if
  // none is now. Not called if the connection closes first.
  void when_replies_done(std::function<void()> fn);
  // While on, the current request's replies go nowhere (CLIENT REPLY OFF/SKIP), a reply it
  // defers included, without disturbing the order of the others.
  void set_discarding(bool on);
  int protocol() const { return writer_.protocol(); }
  void set_protocol(int p);

  // Replies already queued are sent, then the connection closes.
  void close_after_reply();
  void close();
  bool closing() const { return closing_; }
  bool closed() const { return closed_; }

  // Reading can be paused for several independent reasons; it resumes when none is left.
  enum PauseReason : unsigned {
    kPauseBackpressure = 1,
    kPauseClientPause = 2,
    kPauseService = 4,
    kPauseAwaiting = 8,  // too many replies awaited from elsewhere (see too_many_awaited)
  };
  void pause_reading(PauseReason why);
  void resume_reading(PauseReason why);

  void set_authenticated(bool a) { authenticated_ = a; }
  // A peer node's link: its requests passed the sending node's limits already, so this node's
  // proto-max-bulk-len does not apply to them (a lower one here would break the link for every
  // request on it, not refuse the one).
  void set_peer_link(bool on) { peer_link_ = on; }
  // Whether the peer has closed its side (or reset it): a poll for POLLRDHUP, which sees the
  // close behind data not read yet.
  bool peer_gone();
  bool authenticated() const { return authenticated_; }

  Session* session() { return session_.get(); }
  void set_session(std::unique_ptr<Session> s) { session_ = std::move(s); }

  // ---- introspection (CLIENT LIST / INFO)
  Millis created_ms() const { return created_ms_; }
  Millis last_interaction_ms() const { return last_interaction_ms_; }
  // Counts the output the socket took during a write still under way as interaction, as Redis
  // counts every write (libuv reports a write only once all of it is done). The idle check
  // calls this before it looks at last_interaction_ms().
  void note_write_progress();
  size_t query_buffer_size() const { return qbuf_.size(); }
  size_t query_buffer_capacity() const { return qbuf_.capacity(); }
  size_t pending_output() const;
  uint64_t commands_processed() const { return commands_; }
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }

  // Writes what is queued now (normally done at the end of each read).
  void flush();
  // Closes the connection if its pending output is past client-output-buffer-limit. Runs after
  // every request and write; the server also calls it periodically, since a client that stopped
  // reading and sending gets no other event (as Redis's clientsCron does).
  void check_output_limits();

 private:
  friend class Deferred;
  struct Slot {
    std::string data;
    bool ready = false;
    bool discard = false;  // deferred by a request whose reply goes nowhere
  };
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_written(uv_write_t* req, int status);
  static void on_closed(uv_handle_t* h);

  // TLS: decrypts the bytes read from the socket and runs the requests they complete, as
  // on_read does with plaintext (in place in the loop's shared buffer when it can).
  void tls_received(const char* data, size_t len);
  // Parses and dispatches requests from data[0..len); returns the bytes consumed.
  size_t process(const char* data, size_t len);
  void process_own_buffer();
  void complete_slot(uint64_t seq, std::string data);
  void complete_slot_from(uint64_t seq, std::string_view data);
  void drain_slots();
  // Counts a deferred reply of `bytes` as arrived; reading resumes if it was paused for them.
  void awaited_arrived(size_t bytes);
  bool too_many_awaited(size_t share = 1) const;
  void request_flush();
  void update_reading();
  bool handshaking() const { return tls_ && !tls_->handshake_done(); }
  // Brings net_.output_bytes (counted against maxmemory, shown in INFO) up to date.
  void account_output();
  void flush_now();
  // Writes `data` (out_, or tls_out_) to the socket: what it does not take at once goes to
  // wbuf_ and uv_write.
  void send(std::string& data);

  LoopNet& net_;
  uint64_t id_;
  uv_tcp_t tcp_;
  std::shared_ptr<Connection> self_;  // keeps the connection alive until its close callback
  std::string peer_, local_;

  ByteBuffer qbuf_;  // a partial request carried over between reads
  resp::RequestParser parser_;

  std::string out_;  // replies ready to be written
  // TLS: the session, and records ready to be written (out_ encrypted, handshake messages).
  std::unique_ptr<TlsSession> tls_;
  std::string tls_out_;
  size_t tls_plain_off_ = 0;  // out_[0..tls_plain_off_) is encrypted already
  bool tls_continue_posted_ = false;
  size_t write_queue_seen_ = 0;       // see note_write_progress
  std::unique_ptr<char[]> tls_read_;  // read buffer when the loop's tls_read is taken
  std::string wbuf_;                  // bytes handed to uv_write, alive until its callback
  size_t wbuf_off_ = 0;
  uv_write_t wreq_;
  bool writing_ = false;
  bool flush_scheduled_ = false;
  std::deque<Slot> slots_;  // replies waiting for a deferred one ahead of them
  std::vector<std::function<void()>> replies_done_;  // see when_replies_done
  uint64_t slot_base_ = 0;                           // sequence number of slots_.front()
  size_t awaited_ = 0;                               // deferred replies not yet completed
  size_t awaited_reply_avg_ = 0;                     // moving average of their sizes, in bytes
  resp::Writer writer_{&out_};
  // set_discarding: the writer writes into discard_, and kept_ is where it writes after. kept_
  // is set exactly while discarding.
  std::string discard_;
  std::string* kept_ = nullptr;
  bool discarding() const { return kept_ != nullptr; }

  bool closing_ = false;
  bool closed_ = false;
  bool close_after_reply_ = false;
  bool reading_ = false;
  bool processing_ = false;
  unsigned paused_ = 0;
  bool authenticated_ = true;
  bool peer_link_ = false;
  std::unique_ptr<Session> session_;

  Millis created_ms_;
  Millis last_interaction_ms_;
  Millis obuf_soft_since_ms_ = 0;
  size_t accounted_output_ = 0;  // this connection's share of net_.output_bytes
  uint64_t commands_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
};

}  // namespace ringkv::net
