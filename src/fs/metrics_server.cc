#include "metrics_server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "metrics.h"

namespace blobfs {

namespace {

MHD_Result answer(void*, MHD_Connection* connection, const char* url, const char* method, const char*,
                  const char*, size_t*, void**) {
  unsigned status = MHD_HTTP_OK;
  std::string body;
  if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0) {
    status = MHD_HTTP_METHOD_NOT_ALLOWED;
    body = "only GET /metrics\n";
  } else if (std::strcmp(url, "/metrics") != 0) {
    status = MHD_HTTP_NOT_FOUND;
    body = "blobfs serves /metrics only\n";
  } else {
    try {
      body = Metrics::global().render();
    } catch (...) {
      status = MHD_HTTP_INTERNAL_SERVER_ERROR;
      body = "cannot render the metrics\n";
    }
  }
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), body.data(), MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type",
                          status == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
  const MHD_Result rc = MHD_queue_response(connection, status, r);
  MHD_destroy_response(r);
  return rc;
}

}  // namespace

std::unique_ptr<MetricsServer> MetricsServer::listen(const ListenAddress& address) {
  const std::string where = "metrics_listen " + address.host + ":" + std::to_string(address.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  if (int rc = ::getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found); rc != 0)
    throw std::runtime_error(where + ": cannot resolve the host: " + gai_strerror(rc));
  std::string why = "no address";
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // a restart need not wait for TIME_WAIT
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 64) == 0) {
      ::freeaddrinfo(found);
      return std::unique_ptr<MetricsServer>(new MetricsServer(fd, address.port));
    }
    why = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(found);
  throw std::runtime_error(where + ": cannot listen: " + why);
}

void MetricsServer::start() {
  // The server's thread takes no signals: the daemon's handlers run on
  // the threads that serve the mount.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, nullptr, nullptr, &answer, nullptr,
                             MHD_OPTION_LISTEN_SOCKET, fd_, MHD_OPTION_CONNECTION_LIMIT, 64u,
                             MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!daemon_) throw std::runtime_error("metrics_listen: libmicrohttpd cannot serve on the bound socket");
}

MetricsServer::~MetricsServer() {
  if (daemon_) MHD_stop_daemon(daemon_);  // closes the listening socket it was given
  else ::close(fd_);
}

}  // namespace blobfs
