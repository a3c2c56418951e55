// ConnectionProbe: notices that the client of an HTTP request has gone while the handler waits for the
// engine (cpp-httplib 0.11 does not hand handlers their socket, and it notices a closed peer only when
// a write fails).
//
// It finds the accepted socket among the process's open descriptors by its (local port, peer port)
// pair, once, then polls it for POLLRDHUP/POLLHUP/POLLERR without reading. The descriptor stays valid
// while the handler runs (cpp-httplib closes it only after the response is done). When it cannot be
// found (another platform, a proxy in front) peer_closed() is always false and writes still detect a
// gone client.
// Thread-safety: one probe per request, used by that request's thread.
#pragma once

#include <string>

namespace frugal {

class ConnectionProbe {
 public:
  ConnectionProbe(int local_port, int remote_port) : local_port_(local_port), remote_port_(remote_port) {}
  // True once the peer has closed or reset the connection.
  bool peer_closed();
  // The descriptor found (-1 when none); for tests.
  int fd();

 private:
  int local_port_, remote_port_;
  int fd_ = -2;  // -2: not searched yet, -1: not found
};

}  // namespace frugal
