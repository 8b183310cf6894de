#include "net/connection.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cassert>

#include "common/huge_pages.h"
#include "common/log.h"

namespace ringkv::net {

namespace {
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kIdleBufferKeep = 64 * 1024;
// Requests read after the loop stood still this long are checked for a sender that has closed
// the connection meanwhile (see on_read; PeerLink's reply timeout is 5 s).
constexpr uint64_t kStallCheckMs = 1000;
constexpr size_t kBackpressureHigh = 16 * 1024 * 1024;
constexpr size_t kBackpressureLow = 4 * 1024 * 1024;
// TLS: replies are encrypted this many bytes at a time, at most kTlsChunksPerTurn per turn.
constexpr size_t kTlsChunk = 256 * 1024;
constexpr int kTlsChunksPerTurn = 4;
// A client's replies awaited from elsewhere (forwarded to a peer, waiting for replicas) are
// bounded in number and in estimated bytes: their number times the moving average size of its
// deferred replies, which starts at kAwaitedReplySeed, so a new client has at most 8 awaited
// until its replies show they are smaller (the average halves its distance to each new size:
// after 3 small replies, 64 may be awaited). The clients of a loop share its link to each
// peer: without the bound, one client pipelining large reads queues gigabytes ahead of the
// others' requests. Its next requests are read once enough of those replies have arrived. Peer
// links are not bounded: the sending node bounds each of its clients.
constexpr size_t kMaxAwaited = 64;
constexpr size_t kAwaitedReplySeed = 512 * 1024;
constexpr size_t kMaxAwaitedBytes = 4 * 1024 * 1024;
// The bulk limit on a peer node's link (set_peer_link): above any the sending node accepts by
// default, still bounded.
constexpr int64_t kPeerMaxBulkLen = int64_t{4} * 1024 * 1024 * 1024;

std::string format_address(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(a, host, sizeof host);
    port = ntohs(a->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(a, host, sizeof host);
    port = ntohs(a->sin6_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  return "?:0";
}
}  // namespace

// ---------------------------------------------------------------- Deferred

Deferred& Deferred::operator=(Deferred&& o) noexcept {
  if (this != &o) {
    if (conn_) complete("-ERR internal error: a reply was lost\r\n");
    conn_ = std::move(o.conn_);
    seq_ = o.seq_;
  }
  return *this;
}

Deferred::~Deferred() {
  if (conn_) complete("-ERR internal error: a reply was lost\r\n");
}

void Deferred::complete(std::string resp) {
  if (!conn_) return;
  std::shared_ptr<Connection> c = std::move(conn_);
  c->complete_slot(seq_, std::move(resp));
}

void Deferred::complete_from(std::string_view resp) {
  if (!conn_) return;
  std::shared_ptr<Connection> c = std::move(conn_);
  c->complete_slot_from(seq_, resp);
}

// ---------------------------------------------------------------- lifecycle

Connection::Connection(LoopNet& net, uint64_t id) : net_(net), id_(id) {
  uv_tcp_init(net.loop.uv(), &tcp_);
  tcp_.data = this;
  awaited_reply_avg_ = kAwaitedReplySeed;
  created_ms_ = last_interaction_ms_ = system_clock().now_ms();
}

Connection::~Connection() { assert(closed_ || !self_); }

int Connection::fd() const {
  uv_os_fd_t fd = -1;
  uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd);
  return fd;
}

void Connection::use_tls(std::shared_ptr<TlsContext> ctx) {
  assert(!self_);
  tls_ = std::make_unique<TlsSession>(std::move(ctx));
}

void Connection::start(std::shared_ptr<Connection> self) {
  self_ = std::move(self);
  net_.connections.insert(this);
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    peer_ = format_address(ss);
  len = sizeof ss;
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    local_ = format_address(ss);
  uv_tcp_nodelay(&tcp_, 1);
  int64_t ka = net_.limits.tcp_keepalive.load(std::memory_order_relaxed);
  if (ka > 0) uv_tcp_keepalive(&tcp_, 1, static_cast<unsigned>(ka));
  net_.service.on_open(*this);
  if (closing_) return;
  update_reading();
  flush();
}

void Connection::close() {
  if (closing_) return;
  closing_ = true;
  account_output();
  if (reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
  net_.connections.erase(this);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Connection::on_closed);
}

void Connection::on_closed(uv_handle_t* h) {
  auto* c = static_cast<Connection*>(h->data);
  c->closed_ = true;
  c->net_.service.on_close(*c);
  c->slots_.clear();
  if (c->discarding())
    c->kept_ = &c->out_;
  else
    c->writer_.set_buffer(&c->out_);
  std::shared_ptr<Connection> self = std::move(c->self_);
  // `self` may be the last reference: the connection is freed here.
}

void Connection::close_after_reply() {
  close_after_reply_ = true;
  // A TLS client still handshaking is read until it is done, so that it gets the reply.
  if (reading_ && !handshaking()) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
  if (!processing_) request_flush();
}

void Connection::set_protocol(int p) { writer_.set_protocol(p); }

// ---------------------------------------------------------------- reading

void Connection::pause_reading(PauseReason why) {
  paused_ |= why;
  update_reading();
}

void Connection::resume_reading(PauseReason why) {
  if ((paused_ & why) == 0) return;
  paused_ &= ~static_cast<unsigned>(why);
  update_reading();
  if (paused_ == 0 && !closing_ && !qbuf_.empty()) {
    // Requests already buffered run now, not only when more bytes arrive.
    std::weak_ptr<Connection> weak = weak_from_this();
    net_.loop.post([weak] {
      auto c = weak.lock();
      if (!c || c->closing_ || c->paused_ != 0 || c->processing_) return;
      c->process_own_buffer();
      c->flush();
    });
  }
}

void Connection::update_reading() {
  if (closing_) return;
  size_t pending = pending_output();
  if (pending > kBackpressureHigh) {
    paused_ |= kPauseBackpressure;
  } else if ((paused_ & kPauseBackpressure) && pending < kBackpressureLow) {
    paused_ &= ~static_cast<unsigned>(kPauseBackpressure);
    if (paused_ == 0 && !qbuf_.empty()) {
      std::weak_ptr<Connection> weak = weak_from_this();
      net_.loop.post([weak] {
        auto c = weak.lock();
        if (!c || c->closing_ || c->paused_ != 0 || c->processing_) return;
        c->process_own_buffer();
        c->flush();
      });
    }
  }
  bool want = paused_ == 0 && (!close_after_reply_ || handshaking());
  if (want && !reading_) {
    uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &Connection::on_alloc,
                  &Connection::on_read);
    reading_ = true;
  } else if (!want && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
}

void Connection::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(h->data);
  LoopNet& net = c->net_;
  if (c->tls_) {
    // Records: all of them are decrypted in on_read, so the loop's buffer serves every
    // connection (a connection's own is only for a read inside another's).
    if (!net.tls_read) net.tls_read.reset(new char[LoopNet::kSharedReadSize]);
    if (!net.tls_read_busy) {
      net.tls_read_busy = true;
      *buf = uv_buf_init(net.tls_read.get(), LoopNet::kSharedReadSize);
      return;
    }
    if (!c->tls_read_) c->tls_read_.reset(new char[kReadChunk]);
    *buf = uv_buf_init(c->tls_read_.get(), kReadChunk);
    return;
  }
  if (c->qbuf_.empty() && !net.shared_busy) {
    net.shared_busy = true;
    *buf = uv_buf_init(net.shared_read.get(), LoopNet::kSharedReadSize);
    return;
  }
  size_t want = kReadChunk;
  size_t wanted = c->parser_.bytes_wanted();
  if (wanted > c->qbuf_.size() && wanted - c->qbuf_.size() > want) want = wanted - c->qbuf_.size();
  c->qbuf_.ensure_writable(want);
  *buf = uv_buf_init(c->qbuf_.write_ptr(), c->qbuf_.writable());
}

void Connection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(s->data);
  LoopNet& net = c->net_;
  const bool shared = buf->base == net.shared_read.get();
  const bool tls_shared = net.tls_read && buf->base == net.tls_read.get();
  if (nread <= 0) {
    if (shared) net.shared_busy = false;
    if (tls_shared) net.tls_read_busy = false;
    if (nread < 0) c->close();  // EOF or error
    return;
  }
  std::shared_ptr<Connection> keep = c->shared_from_this();
  if (net.loop.stalled_for(kStallCheckMs) && (c->peer_link_ || net.service.drop_abandoned(*c)) &&
      c->peer_gone()) {
    // What waited while this loop stood still, on a connection closed since: its sender gave
    // up on those requests (a peer link timed out and failed them; a client timed out and may
    // have sent them to another node), so running them now could only apply a write reported
    // as failed after later ones, with a newer version that would replace them on every copy.
    LOG_NOTICE(
        "Dropping %zd bytes of requests from connection id=%llu addr=%s: this loop stood "
        "still and the sender has closed the connection since",
        nread, static_cast<unsigned long long>(c->id_), c->peer_.c_str());
    if (shared) net.shared_busy = false;
    if (tls_shared) net.tls_read_busy = false;
    c->qbuf_.release();
    c->close();
    return;
  }
  net.reads.fetch_add(1, std::memory_order_relaxed);
  c->last_interaction_ms_ = system_clock().now_ms();
  if (c->tls_) {
    c->tls_received(buf->base, static_cast<size_t>(nread));  // counts the plaintext it reads
    if (tls_shared) net.tls_read_busy = false;
  } else {
    c->bytes_in_ += static_cast<uint64_t>(nread);
    net.bytes_in.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
    if (shared) {
      size_t used = c->process(buf->base, static_cast<size_t>(nread));
      if (!c->closing_ && used < static_cast<size_t>(nread)) {
        c->qbuf_.append(buf->base + used, static_cast<size_t>(nread) - used);
      }
      net.shared_busy = false;
    } else {
      c->qbuf_.commit(static_cast<size_t>(nread));
      c->process_own_buffer();
    }
  }
  if (c->closing_) return;
  int64_t qlimit = net.limits.query_buffer_limit.load(std::memory_order_relaxed);
  if (static_cast<int64_t>(c->qbuf_.size()) > qlimit) {
    LOG_WARNING("Closing client that reached max query buffer length: id=%llu addr=%s qbuf=%zu",
                static_cast<unsigned long long>(c->id_), c->peer_.c_str(), c->qbuf_.size());
    c->close();
    return;
  }
  // Replies leave at the end of the loop's turn, after every readable client was served (as
  // Redis writes in beforeSleep): a client whose replies are ready together gets them in one
  // write, and the peer wakes once for them rather than once per connection's read.
  c->request_flush();
}

bool Connection::peer_gone() {
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) != 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void Connection::tls_received(const char* data, size_t len) {
  tls_->feed(data, len);
  TlsSession::ReadResult r;
  // Every record fed is decrypted now (the session reads `data` in place), whether or not the
  // connection may run requests at the moment: what it may not run waits in qbuf_.
  for (;;) {
    const bool in_place = qbuf_.empty() && !net_.shared_busy && !closing_;
    char* buf;
    size_t cap;
    if (in_place) {
      buf = net_.shared_read.get();
      cap = LoopNet::kSharedReadSize;
    } else {
      qbuf_.ensure_writable(kReadChunk);
      buf = qbuf_.write_ptr();
      cap = qbuf_.writable();
    }
    r = tls_->read(buf, cap);
    if (r.status != TlsSession::ReadStatus::kData) break;
    bytes_in_ += r.bytes;  // as Redis counts: the requests' bytes, not the records'
    net_.bytes_in.fetch_add(r.bytes, std::memory_order_relaxed);
    if (closing_) continue;
    if (in_place) {
      net_.shared_busy = true;
      size_t used = process(buf, r.bytes);
      if (!closing_ && used < r.bytes) qbuf_.append(buf + used, r.bytes - used);
      net_.shared_busy = false;
    } else {
      qbuf_.commit(r.bytes);
      process_own_buffer();
    }
  }
  if (r.status == TlsSession::ReadStatus::kError && !closing_) {
    LOG_VERBOSE("Error accepting a client connection: %s (id=%llu addr=%s)", tls_->error().c_str(),
                static_cast<unsigned long long>(id_), peer_.c_str());
    // The alert OpenSSL queued tells the client why (no certificate, an unknown CA...).
    tls_->take_output(tls_out_);
    if (!tls_out_.empty()) {
      uv_buf_t b = uv_buf_init(tls_out_.data(), static_cast<unsigned>(tls_out_.size()));
      uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
    }
    close();
    return;
  }
  // close_notify: what came before it is answered, then the connection closes.
  if (r.status == TlsSession::ReadStatus::kClosed && !closing_) close_after_reply();
}

void Connection::process_own_buffer() {
  size_t used = process(qbuf_.begin(), qbuf_.size());
  if (closing_) return;
  qbuf_.consume(used);
  if (qbuf_.empty() && qbuf_.capacity() > kIdleBufferKeep) qbuf_.release();
}

size_t Connection::process(const char* data, size_t len) {
  resp::ParserLimits lim;
  lim.max_bulk_len = net_.limits.max_bulk_len.load(std::memory_order_relaxed);
  if (peer_link_) lim.max_bulk_len = std::max<int64_t>(lim.max_bulk_len, kPeerMaxBulkLen);
  parser_.set_limits(lim);
  bool peer_limits = peer_link_;
  processing_ = true;
  size_t off = 0;
  while (off < len && !closing_ && !close_after_reply_ && paused_ == 0) {
    if (peer_link_ && !peer_limits) {
      // The request just run made this a peer link (RINGKV.HELLO): the next ones, read in the
      // same buffer, get its limits.
      peer_limits = true;
      lim.max_bulk_len = std::max<int64_t>(lim.max_bulk_len, kPeerMaxBulkLen);
      parser_.set_limits(lim);
    }
    size_t consumed = 0;
    resp::ParseStatus st = parser_.parse(data + off, len - off, authenticated_, &consumed);
    if (st == resp::ParseStatus::kNeedMore) break;
    if (st == resp::ParseStatus::kError) {
      writer_.error(parser_.error());
      net_.service.on_protocol_error(*this, parser_.error());
      LOG_VERBOSE("Protocol error (%s) from client: id=%llu addr=%s", parser_.error().c_str(),
                  static_cast<unsigned long long>(id_), peer_.c_str());
      off = len;
      close_after_reply_ = true;
      break;
    }
    off += consumed;
    if (st == resp::ParseStatus::kEmpty) continue;
    ++commands_;
    // The parser's argument vector is handed over as is: the service may reorder it.
    net_.service.on_command(*this, const_cast<std::vector<std::string_view>&>(parser_.args()));
    // Back-pressure and output limits after every request, not once per read: a single read of
    // "GET big" requests can otherwise ask for gigabytes of replies before either is looked at.
    if (pending_output() > kBackpressureHigh) paused_ |= kPauseBackpressure;
    if (too_many_awaited()) pause_reading(kPauseAwaiting);
    check_output_limits();
  }
  processing_ = false;
  if (close_after_reply_ && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
  return off;
}

// ---------------------------------------------------------------- replies

Deferred Connection::defer() {
  uint64_t seq = slot_base_ + slots_.size();
  bool discarding_now = discarding();
  slots_.push_back(Slot{std::string(), false, discarding_now});
  ++awaited_;
  // Replies after this one queue in a new tail slot (deque references stay valid on push_back).
  slots_.push_back(Slot{std::string(), true});
  if (discarding_now)
    kept_ = &slots_.back().data;
  else
    writer_.set_buffer(&slots_.back().data);
  return Deferred(shared_from_this(), seq);
}

void Connection::set_discarding(bool on) {
  if (on == discarding()) return;
  if (on) {
    kept_ = writer_.buffer();
    writer_.set_buffer(&discard_);
  } else {
    discard_.clear();
    writer_.set_buffer(kept_);
    kept_ = nullptr;
  }
}

void Connection::complete_slot(uint64_t seq, std::string data) {
  if (closing_ || closed_) return;
  assert(seq >= slot_base_ && seq < slot_base_ + slots_.size());
  Slot& s = slots_[seq - slot_base_];
  const size_t bytes = data.size();
  if (!s.discard) s.data = std::move(data);
  s.ready = true;
  drain_slots();
  awaited_arrived(bytes);
  request_flush();
}

void Connection::complete_slot_from(uint64_t seq, std::string_view data) {
  if (closing_ || closed_) return;
  assert(seq >= slot_base_ && seq < slot_base_ + slots_.size());
  Slot& s = slots_[seq - slot_base_];
  // The first slot awaited: everything before it is in out_ already.
  if (!s.discard) {
    if (seq == slot_base_)
      append_advised(&out_, data);  // a forwarded reply, maybe a large value
    else
      append_advised(&s.data, data);
  }
  s.ready = true;
  drain_slots();
  awaited_arrived(data.size());
  request_flush();
}

void Connection::drain_slots() {
  while (!slots_.empty() && slots_.front().ready) {
    Slot& f = slots_.front();
    bool is_tail = writer_.buffer() == &f.data;
    bool kept_tail = kept_ == &f.data;
    out_.append(f.data);
    slots_.pop_front();
    ++slot_base_;
    if (is_tail) writer_.set_buffer(&out_);
    if (kept_tail) kept_ = &out_;
  }
  if (slots_.empty() && !replies_done_.empty()) when_replies_done(nullptr);
}

bool Connection::too_many_awaited(size_t share) const {
  if (peer_link_) return false;
  return awaited_ * share >= kMaxAwaited ||
         awaited_ * awaited_reply_avg_ * share >= kMaxAwaitedBytes;
}

void Connection::awaited_arrived(size_t bytes) {
  assert(awaited_ > 0);
  --awaited_;
  awaited_reply_avg_ = awaited_reply_avg_ / 2 + bytes / 2;
  // Resumes at half the bound, not at every reply.
  if ((paused_ & kPauseAwaiting) && !too_many_awaited(2)) resume_reading(kPauseAwaiting);
}

void Connection::when_replies_done(std::function<void()> fn) {
  if (fn) replies_done_.push_back(std::move(fn));
  if (!slots_.empty() || replies_done_.empty()) return;
  // Run outside the reply's completion (and outside the request that asked), posted to the
  // loop: the callbacks may run requests on this connection.
  std::weak_ptr<Connection> weak = weak_from_this();
  net_.loop.post([weak] {
    auto c = weak.lock();
    if (!c || c->closing_ || !c->slots_.empty()) return;
    auto fns = std::move(c->replies_done_);
    c->replies_done_.clear();
    for (auto& f : fns) f();
  });
}

void Connection::request_flush() {
  if (flush_scheduled_ || closing_) return;
  flush_scheduled_ = true;
  std::shared_ptr<Connection> self = shared_from_this();
  net_.loop.at_end_of_turn([self] {
    self->flush_scheduled_ = false;
    self->flush();
    self->check_output_limits();
  });
}

size_t Connection::pending_output() const {
  size_t n = out_.size() - tls_plain_off_ + tls_out_.size();
  if (writing_) n += wbuf_.size() - wbuf_off_;
  for (const Slot& s : slots_) n += s.data.size();
  return n;
}

void Connection::flush() {
  flush_now();
  account_output();
}

void Connection::flush_now() {
  if (closing_ || writing_) return;
  if (!tls_) {
    send(out_);
    return;
  }
  // TLS: the replies are encrypted a chunk at a time, the next once the socket took the one
  // before, so a large reply neither stalls the loop's other clients while it is encrypted nor
  // is held twice. A reply made before the handshake is done (a refusal at accept) waits for it.
  for (int step = 0; step < kTlsChunksPerTurn; ++step) {
    if (tls_out_.empty() && tls_->handshake_done() && tls_plain_off_ < out_.size()) {
      const size_t n = std::min(kTlsChunk, out_.size() - tls_plain_off_);
      tls_->write(std::string_view(out_).substr(tls_plain_off_, n));
      tls_plain_off_ += n;
      if (tls_plain_off_ == out_.size()) {
        out_.clear();
        tls_plain_off_ = 0;
        if (out_.capacity() > 1024 * 1024) out_.shrink_to_fit();
      }
    }
    tls_->take_output(tls_out_);
    if (!tls_->error().empty()) {
      LOG_VERBOSE("TLS error on client id=%llu addr=%s: %s", static_cast<unsigned long long>(id_),
                  peer_.c_str(), tls_->error().c_str());
      close();
      return;
    }
    send(tls_out_);
    if (closing_ || writing_ || out_.empty() || !tls_->handshake_done()) return;
  }
  // The socket took every chunk of this turn and more is left: the rest after the other
  // clients had their turn.
  if (!tls_continue_posted_) {
    tls_continue_posted_ = true;
    std::weak_ptr<Connection> weak = weak_from_this();
    net_.loop.post([weak] {
      auto c = weak.lock();
      if (!c) return;
      c->tls_continue_posted_ = false;
      c->flush();
    });
  }
}

void Connection::send(std::string& data) {
  if (data.empty()) {
    if (close_after_reply_ && slots_.empty() && out_.empty()) close();
    return;
  }
  uv_buf_t b = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
  int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
  if (n < 0) {
    close();
    return;
  }
  bytes_out_ += static_cast<uint64_t>(n);
  net_.bytes_out.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  net_.writes.fetch_add(1, std::memory_order_relaxed);
  // A client taking its replies is not idle (timeout), as in Redis.
  if (n > 0) last_interaction_ms_ = system_clock().now_ms();
  if (static_cast<size_t>(n) == data.size()) {
    data.clear();
    if (data.capacity() > 1024 * 1024) data.shrink_to_fit();
    if (close_after_reply_ && slots_.empty() && out_.empty()) {
      close();
      return;
    }
    update_reading();
    return;
  }
  wbuf_.swap(data);
  data.clear();
  wbuf_off_ = static_cast<size_t>(n);
  b = uv_buf_init(wbuf_.data() + wbuf_off_, static_cast<unsigned>(wbuf_.size() - wbuf_off_));
  writing_ = true;
  int rc = uv_write(&wreq_, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1, &Connection::on_written);
  if (rc != 0) {
    writing_ = false;  // the callback will not run
    close();
    return;
  }
  wreq_.data = this;
  update_reading();
}

void Connection::on_written(uv_write_t* req, int status) {
  auto* c = static_cast<Connection*>(req->handle->data);
  c->writing_ = false;
  if (status < 0) {
    c->close();
    return;
  }
  c->bytes_out_ += c->wbuf_.size() - c->wbuf_off_;
  c->net_.bytes_out.fetch_add(c->wbuf_.size() - c->wbuf_off_, std::memory_order_relaxed);
  c->net_.writes.fetch_add(1, std::memory_order_relaxed);
  c->last_interaction_ms_ = system_clock().now_ms();
  c->wbuf_.clear();
  if (c->wbuf_.capacity() > 1024 * 1024) c->wbuf_.shrink_to_fit();
  c->wbuf_off_ = 0;
  c->flush();
  if (!c->closing_) c->update_reading();
}

void Connection::note_write_progress() {
  if (!writing_) return;
  size_t queued = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&tcp_));
  if (queued == write_queue_seen_) return;
  write_queue_seen_ = queued;
  last_interaction_ms_ = system_clock().now_ms();
}

void Connection::account_output() {
  size_t now = closing_ ? 0 : pending_output();
  if (now == accounted_output_) return;
  if (now > accounted_output_)
    net_.output_bytes.fetch_add(now - accounted_output_, std::memory_order_relaxed);
  else
    net_.output_bytes.fetch_sub(accounted_output_ - now, std::memory_order_relaxed);
  accounted_output_ = now;
}

void Connection::check_output_limits() {
  if (closing_) return;
  int64_t hard = net_.limits.obuf_hard.load(std::memory_order_relaxed);
  int64_t soft = net_.limits.obuf_soft.load(std::memory_order_relaxed);
  if (hard == 0 && soft == 0) return;
  int64_t pending = static_cast<int64_t>(pending_output());
  Millis now = system_clock().now_ms();
  bool over = hard > 0 && pending >= hard;
  if (soft > 0 && pending >= soft) {
    if (obuf_soft_since_ms_ == 0) {
      obuf_soft_since_ms_ = now;
    } else if (now - obuf_soft_since_ms_ >=
               net_.limits.obuf_soft_seconds.load(std::memory_order_relaxed) * 1000) {
      over = true;
    }
  } else {
    obuf_soft_since_ms_ = 0;
  }
  if (over) {
    LOG_WARNING(
        "Client id=%llu addr=%s closed for overcoming of output buffer limits (%lld bytes "
        "pending).",
        static_cast<unsigned long long>(id_), peer_.c_str(), static_cast<long long>(pending));
    close();
  }
}

}  // namespace ringkv::net
