// The interface a connection dispatches into. net knows nothing of commands: the server
// implements Service, and each connection carries an opaque Session the server attached.
#pragma once

#include <string_view>
#include <vector>

namespace ringkv::net {

class Connection;

// Per-connection state owned by the service (client name, auth, transaction...).
class Session {
 public:
  virtual ~Session() = default;
};

class Service {
 public:
  virtual ~Service() = default;
  // A client connected. The service may reply and close at once (maxclients).
  virtual void on_open(Connection& conn) = 0;
  // One parsed request. `args` point into the connection's input buffer: they are valid only
  // during the call (copy what must outlive it).
  virtual void on_command(Connection& conn, std::vector<std::string_view>& args) = 0;
  // A protocol error closes the connection after its reply; the service may count it.
  virtual void on_protocol_error(Connection& conn, std::string_view error) {}
  // The connection is closed; no more calls will come for it.
  virtual void on_close(Connection& conn) = 0;
  // Data arrived after the loop stood still for a while, and the client has closed its side
  // meanwhile (it gave up on those requests): whether to drop them unrun instead of running them
  // as usual. Peer links always drop them (see Connection::on_read).
  virtual bool drop_abandoned(Connection& conn) { return false; }
};

}  // namespace ringkv::net
