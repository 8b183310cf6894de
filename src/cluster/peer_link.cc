#include "cluster/peer_link.h"

#include <cstring>

#include "cluster/ring_config.h"
#include "common/huge_pages.h"
#include "common/log.h"
#include "common/strings.h"
#include "resp/reply_scanner.h"

namespace ringkv::cluster {

namespace {

// Up to how many queued bytes flush_or_hold lets a busy loop's requests to a peer wait for more.
constexpr size_t kHoldMaxBytes = 16 * 1024;

// Empties a buffer; one that grew for a large request or reply gives its memory back.
void clear_buffer(std::string& b) {
  constexpr size_t kKeep = 1 << 20;
  if (b.capacity() > kKeep)
    std::string().swap(b);
  else
    b.clear();
}

// A large bulk reply arriving (a GET of a value of many MB): room for all of it at once, advised
// for huge pages, rather than a buffer doubled again and again as 64 KB reads come in.
void reserve_for_bulk(std::string& b) {
  if (b.size() < 4 || b[0] != '$') return;
  size_t eol = b.find("\r\n");
  int64_t len = 0;
  if (eol == std::string::npos || !parse_int64(std::string_view(b).substr(1, eol - 1), &len) ||
      len < static_cast<int64_t>(kHugePageAdviceMin) || len > (int64_t{1} << 32))
    return;
  size_t total = eol + 2 + static_cast<size_t>(len) + 2;
  if (b.capacity() >= total) return;
  b.reserve(total);
  advise_huge_pages(b.data() + b.size(), total - b.size());
}

}  // namespace

struct PeerLink::Handle {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  PeerLink* link;  // null once the link is gone
};

// A host name being resolved; freed in its callback, which does nothing once the link is gone
// or has started another connection.
struct PeerLink::Resolving {
  uv_getaddrinfo_t req;
  PeerLink* link;
  std::shared_ptr<bool> alive;
  uint64_t attempt;
  std::string host;
};

PeerLink::PeerLink(net::EventLoop& loop, std::string peer_id, std::string address, Options options)
    : loop_(loop),
      peer_id_(std::move(peer_id)),
      address_(std::move(address)),
      options_(std::move(options)) {
  timer_ = std::make_unique<net::Timer>(loop_);
  timer_->start(500, 500, [this] { check_timeouts(); });
}

PeerLink::~PeerLink() {
  *alive_ = false;
  timer_.reset();
  fail_all("peer link closed");
  if (handle_ != nullptr) {
    handle_->link = nullptr;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&handle_->tcp)))
      uv_close(reinterpret_cast<uv_handle_t*>(&handle_->tcp),
               [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });
    handle_ = nullptr;
  }
}

void PeerLink::set_address(const std::string& address) {
  if (address == address_) return;
  address_ = address;
  if (state_ != State::kIdle) close_connection("peer address changed");
}

void PeerLink::encode(const std::vector<std::string_view>& args, std::string* out) {
  char buf[32];
  // Room for the whole request first: a large value is copied once, not again as out grows.
  size_t size = 16;
  for (std::string_view a : args) size += a.size() + 24;
  out->reserve(out->size() + size);
  advise_huge_pages(out->data() + out->size(), size);
  out->push_back('*');
  out->append(buf, format_int64(buf, static_cast<int64_t>(args.size())));
  out->append("\r\n");
  for (std::string_view a : args) {
    out->push_back('$');
    out->append(buf, format_int64(buf, static_cast<int64_t>(a.size())));
    out->append("\r\n");
    out->append(a);
    out->append("\r\n");
  }
}

void PeerLink::send(const std::vector<std::string_view>& args, Callback cb) {
  if (!ready_to_send(cb)) return;
  encode(args, &out_);
  queued(std::move(cb));
}

void PeerLink::send_encoded(std::string_view request, Callback cb) {
  if (!ready_to_send(cb)) return;
  out_.append(request);
  queued(std::move(cb));
}

bool PeerLink::ready_to_send(const Callback& cb) {
  if (state_ != State::kIdle) return true;
  Micros now = system_clock().now_us();
  if (failed_at_us_ != 0 && now - failed_at_us_ < options_.backoff_ms * 1000) {
    cb(false, "peer " + peer_id_ + " (" + address_ + ") unreachable: " + last_error_);
    return false;
  }
  connect();
  return true;
}

void PeerLink::queued(Callback cb) {
  pending_.push_back(Pending{std::move(cb), system_clock().now_us(), false});
  if (state_ == State::kConnected) schedule_flush();
}

void PeerLink::announce_epoch(uint64_t epoch) {
  if (epoch == announced_epoch_) return;
  if (state_ == State::kIdle) {
    Micros now = system_clock().now_us();
    if (failed_at_us_ != 0 && now - failed_at_us_ < options_.backoff_ms * 1000) return;
    connect();
    if (state_ == State::kIdle) return;
  }
  encode({"RINGKV.EPOCH", std::to_string(epoch)}, &out_);
  pending_.push_back(Pending{nullptr, system_clock().now_us(), true});
  announced_epoch_ = epoch;
  if (state_ == State::kConnected) schedule_flush();
}

void PeerLink::connect() {
  std::string host;
  int port;
  if (!split_address(address_, &host, &port)) {
    failed_at_us_ = system_clock().now_us();
    last_error_ = "bad address '" + address_ + "'";
    return;
  }
  sockaddr_storage ss{};
  const bool literal = uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&ss)) == 0 ||
                       uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&ss)) == 0;
  state_ = State::kConnecting;
  ++attempt_;
  // The handshake goes first: it names us (so the peer treats the connection as internal) and,
  // for RESP3 links, switches the protocol.
  std::string hs;
  if (!options_.password.empty()) {
    encode({"AUTH", options_.password}, &hs);
    pending_.push_front(Pending{nullptr, system_clock().now_us(), true});
  }
  encode({"RINGKV.HELLO", options_.my_id, std::to_string(options_.protocol)}, &hs);
  // The handshake replies come before any queued request's.
  pending_.insert(pending_.begin() + (options_.password.empty() ? 0 : 1),
                  Pending{nullptr, system_clock().now_us(), true, true});
  out_.insert(0, hs);
  if (literal) {
    connect_to(reinterpret_cast<const sockaddr*>(&ss));
    return;
  }
  // A host name: resolved on every connection (a restarted peer may have a new address), off
  // the loop (libuv's thread pool), requests queueing meanwhile.
  auto* r = new Resolving{uv_getaddrinfo_t{}, this, alive_, attempt_, host};
  r->req.data = r;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(
      loop_.uv(), &r->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        std::unique_ptr<Resolving> r(static_cast<Resolving*>(req->data));
        std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(res, uv_freeaddrinfo);
        if (!*r->alive) return;
        PeerLink* link = r->link;
        if (link->attempt_ != r->attempt || link->state_ != State::kConnecting ||
            link->handle_ != nullptr)
          return;  // that connection was given up meanwhile
        if (status != 0) {
          link->close_connection("can't resolve '" + r->host + "': " + uv_strerror(status));
          return;
        }
        // IPv4 first: a node listening on 127.0.0.1 is reached as "localhost" too.
        const addrinfo* pick = nullptr;
        for (const addrinfo* a = res; a != nullptr; a = a->ai_next) {
          if (a->ai_family == AF_INET) {
            pick = a;
            break;
          }
          if (pick == nullptr && a->ai_family == AF_INET6) pick = a;
        }
        if (pick == nullptr) {
          link->close_connection("can't resolve '" + r->host + "': no IPv4 or IPv6 address");
          return;
        }
        link->connect_to(pick->ai_addr);
      },
      host.c_str(), std::to_string(port).c_str(), &hints);
  if (rc != 0) {
    delete r;
    close_connection("can't resolve '" + host + "': " + uv_strerror(rc));
  }
}

void PeerLink::connect_to(const sockaddr* addr) {
  handle_ = new Handle;
  handle_->link = this;
  uv_tcp_init(loop_.uv(), &handle_->tcp);
  handle_->tcp.data = handle_;
  handle_->connect_req.data = handle_;
  int rc =
      uv_tcp_connect(&handle_->connect_req, &handle_->tcp, addr, [](uv_connect_t* req, int status) {
        auto* h = static_cast<Handle*>(req->data);
        if (h->link) h->link->on_connected(status);
      });
  if (rc != 0) close_connection(uv_strerror(rc));
}

void PeerLink::on_connected(int status) {
  if (status != 0) {
    close_connection(uv_strerror(status));
    return;
  }
  state_ = State::kConnected;
  failed_at_us_ = 0;
  uv_tcp_nodelay(&handle_->tcp, 1);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&handle_->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        static thread_local char chunk[64 * 1024];
        (void)h;
        *buf = uv_buf_init(chunk, sizeof chunk);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* h = static_cast<Handle*>(s->data);
        if (h->link) h->link->on_read(nread, buf);
      });
  flush();
}

void PeerLink::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {
    close_connection(nread == UV_EOF ? "connection closed by peer"
                                     : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (nread == 0) return;
  last_read_ms_ = loop_.now_ms();
  in_.append(buf->base, static_cast<size_t>(nread));
  // Replies are parsed from a buffer of this call's own: a callback may destroy this link or
  // close its connection, and the replies handed out stay valid meanwhile.
  std::string work;
  work.swap(in_);
  std::shared_ptr<bool> alive = alive_;
  const Handle* connection = handle_;
  size_t off = 0;
  while (off < work.size()) {
    int64_t n = resp::scan_reply(work.data() + off, work.size() - off);
    if (n == 0) break;
    if (n < 0) {
      close_connection("malformed reply from peer");
      return;
    }
    std::string_view reply(work.data() + off, static_cast<size_t>(n));
    off += static_cast<size_t>(n);
    if (pending_.empty()) {
      close_connection("unexpected reply from peer");
      return;
    }
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    if (p.internal) {
      if (resp::reply_is_error(reply)) {
        const std::string text(reply.substr(1, reply.size() > 3 ? reply.size() - 3 : 0));
        LOG_WARNING("Peer %s refused the handshake: %s", peer_id_.c_str(), text.c_str());
        // AUTH or RINGKV.HELLO refused: a password that differs between the nodes
        // (requirepass), most likely. The requests behind it would get the peer's NOAUTH as
        // their replies, which their clients (who did authenticate) could not make sense of,
        // and the connection would stay unauthenticated: it closes, and the requests fail with
        // the reason. (An AUTH refused by a peer that has no password is harmless.)
        if (p.hello || reply.rfind("-WRONGPASS", 0) == 0) {
          close_connection("it refused this node's handshake (" + text +
                           "; is requirepass the same on every node?)");
          return;
        }
      }
      continue;
    }
    if (reply.rfind("-NOAUTH", 0) == 0) {
      // The peer wants a password this node did not send (it has none, or it changed): the
      // same mismatch as above, seen one request later.
      const std::string why =
          "it asks for a password this node did not send (NOAUTH; is requirepass the same on "
          "every node?)";
      const std::string msg = failure(why);
      LOG_WARNING("Peer %s refused a request: NOAUTH", peer_id_.c_str());
      Callback cb = std::move(p.cb);
      close_connection(why);
      if (cb) cb(false, msg);
      return;
    }
    p.cb(true, reply);
    // The link is gone (ring change) or its connection closed: the rest is for no one.
    if (!*alive || handle_ != connection) return;
  }
  work.erase(0, off);
  if (work.empty())
    clear_buffer(work);
  else
    reserve_for_bulk(work);
  in_.swap(work);  // keeps the buffer's capacity (unless it grew for a large reply)
}

void PeerLink::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  held_since_ns_ = 0;
  std::weak_ptr<bool> alive = alive_;
  loop_.at_end_of_turn([this, alive] { flush_or_hold(alive); });
}

// Requests queued in one turn go out in one write at its end. While the loop is saturated (its
// poll already has more events ready) they wait for the next turns' requests too, up to
// hold_max_us or kHoldMaxBytes: the peer then wakes once for a larger batch. On a shared machine
// a wake-up costs more CPU than the request it carries (bench/cluster_vs_twemproxy.sh on 2 cores:
// the peers' reads, one per wake-up, halve). A loop with nothing else ready sends at once.
void PeerLink::flush_or_hold(const std::weak_ptr<bool>& alive) {
  auto a = alive.lock();
  if (!a || !*a) return;
  if (state_ == State::kConnected && out_.size() < kHoldMaxBytes && loop_.events_ready()) {
    const uint64_t now = uv_hrtime();
    if (held_since_ns_ == 0) held_since_ns_ = now;
    if (now - held_since_ns_ < uint64_t{options_.hold_max_us} * 1000) {
      loop_.at_end_of_next_turn([this, alive] { flush_or_hold(alive); });
      return;
    }
  }
  flush_scheduled_ = false;
  flush();
}

void PeerLink::flush() {
  if (state_ != State::kConnected || writing_ || out_.empty()) return;
  uv_buf_t b = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
  int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&handle_->tcp), &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) {
    close_connection(uv_strerror(n));
    return;
  }
  if (static_cast<size_t>(n) == out_.size()) {
    clear_buffer(out_);
    return;
  }
  // The rest goes out from where it is (a large request is not copied again); out_ takes the
  // next requests.
  wbuf_.clear();
  wbuf_.swap(out_);
  writing_ = true;
  last_write_ms_ = loop_.now_ms();
  b = uv_buf_init(wbuf_.data() + n, static_cast<unsigned>(wbuf_.size() - static_cast<size_t>(n)));
  handle_->write_req.data = handle_;
  int rc = uv_write(&handle_->write_req, reinterpret_cast<uv_stream_t*>(&handle_->tcp), &b, 1,
                    [](uv_write_t* req, int status) {
                      auto* h = static_cast<Handle*>(req->data);
                      if (!h->link) return;
                      PeerLink* l = h->link;
                      l->writing_ = false;
                      l->last_write_ms_ = l->loop_.now_ms();
                      clear_buffer(l->wbuf_);
                      if (status < 0) {
                        l->close_connection(uv_strerror(status));
                        return;
                      }
                      l->flush();
                    });
  if (rc != 0) {
    writing_ = false;
    close_connection(uv_strerror(rc));
  }
}

void PeerLink::close_connection(const std::string& why) {
  last_error_ = why;
  failed_at_us_ = system_clock().now_us();
  if (handle_ != nullptr) {
    handle_->link = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_->tcp),
             [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });
    handle_ = nullptr;
  }
  state_ = State::kIdle;
  announced_epoch_ = 0;  // a new connection is a new session on the peer
  last_read_ms_ = 0;
  last_write_ms_ = 0;
  write_queue_seen_ = 0;
  writing_ = false;
  out_.clear();
  wbuf_.clear();
  in_.clear();
  if (options_.on_broken) options_.on_broken();
  fail_all(why);
}

std::string PeerLink::failure(const std::string& why) const {
  return "peer " + peer_id_ + " (" + address_ + ") failed: " + why;
}

void PeerLink::fail_all(const std::string& why) {
  std::deque<Pending> pending;
  pending.swap(pending_);
  // Every callback runs, even if one of them destroys this link: each owns a reply that must
  // be completed, and `pending` is a local copy.
  const std::string msg = failure(why);
  for (auto& p : pending) {
    if (p.internal || !p.cb) continue;
    p.cb(false, msg);
  }
}

void PeerLink::check_timeouts() {
  if (pending_.empty()) return;
  // A peer that keeps sending is busy, not gone: the requests behind a large reply (another
  // client's, on this shared link) wait for it rather than fail while their peer answers.
  // Likewise while it keeps taking a large request (the write queue shrinks), and for a full
  // timeout after it took the last bytes: the wait for a reply starts when the request is out.
  const auto limit_ms = static_cast<uint64_t>(options_.timeout_ms);
  const uint64_t now_ms = loop_.now_ms();
  if (last_read_ms_ != 0 && now_ms - last_read_ms_ < limit_ms) return;
  if (writing_ && handle_ != nullptr) {
    size_t queued = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&handle_->tcp));
    if (queued != write_queue_seen_) {
      write_queue_seen_ = queued;
      last_write_ms_ = now_ms;
    }
  }
  if (last_write_ms_ != 0 && now_ms - last_write_ms_ < limit_ms) return;
  Micros now = system_clock().now_us();
  const Micros waited = now - pending_.front().sent_us;
  if (waited <= static_cast<Micros>(options_.timeout_ms) * 1000) return;
  if (waited <= static_cast<Micros>(options_.live_timeout_ms) * 1000 && options_.peer_live &&
      options_.peer_live())
    return;
  close_connection("no reply within " + std::to_string(options_.timeout_ms) + " ms");
}

}  // namespace ringkv::cluster
