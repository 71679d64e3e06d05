// The HTTP endpoint Prometheus scrapes: GET /metrics answers
// Metrics::global().render(); anything else is 404 (405 for other methods).
// libmicrohttpd serves it from a thread of its own.
//
// Two steps, because a daemon forks after mounting: listen() binds the
// address before the mount (a busy port is an error then, with no mount
// left behind), start() starts the server thread in the process that stays.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "options.h"

struct MHD_Daemon;

namespace blobfs {

class MetricsServer {
 public:
  // Binds and listens. Throws std::runtime_error naming the address and the
  // reason (address in use, not an address of this machine, ...).
  static std::unique_ptr<MetricsServer> listen(const ListenAddress& address);
  ~MetricsServer();  // stops the server and closes the socket
  void start();      // throws std::runtime_error if libmicrohttpd refuses
  uint16_t port() const { return port_; }  // as bound (for port 0 in tests)

 private:
  MetricsServer(int fd, uint16_t port) : fd_(fd), port_(port) {}
  int fd_;
  uint16_t port_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace blobfs
