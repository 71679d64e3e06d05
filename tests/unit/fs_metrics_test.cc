// Metrics: the exposition format (HELP/TYPE, cumulative buckets, errno
// names, outside samples), nothing counted until enabled, and the parse of
// metrics_listen.
#include <catch2/catch.hpp>
#include <cerrno>

#include "../../src/fs/metrics.h"
#include "../../src/fs/options.h"

using namespace blobfs;

TEST_CASE("metrics count nothing until enabled, then render Prometheus' text format") {
  Metrics m;
  m.request(Op::kRead, 0.001);
  m.error(ENOENT);
  m.bytes_read(10);
  CHECK(m.render().find("blobfs_requests_total{op=\"read\"} 0\n") != std::string::npos);
  m.enable();
  m.request(Op::kRead, 0.00002);   // in the 25 us bucket
  m.request(Op::kRead, 0.003);     // in the 10 ms bucket
  m.request(Op::kRead, 5.0);       // only in +Inf
  m.request(Op::kLookup, 0.0001);
  m.error(ENOENT);
  m.error(ENOENT);
  m.error(EIO);
  m.error(0);  // a success reply is no error
  m.bytes_read(4096);
  m.refresh(Metrics::RefreshResult::kCommit);
  m.add_source([] {
    return std::vector<Sample>{{"blobfs_items", "Items.", "gauge", "source=\"/x\"", 10},
                               {"blobfs_ratio", "A fraction.", "gauge", "", 0.25}};
  });
  const std::string t = m.render();
  auto has = [&](const std::string& line) {
    INFO(line);
    CHECK(t.find(line + "\n") != std::string::npos);
  };
  has("# HELP blobfs_requests_total Requests the kernel sent to the daemon, by kind.");
  has("# TYPE blobfs_requests_total counter");
  has("blobfs_requests_total{op=\"read\"} 3");
  has("blobfs_requests_total{op=\"lookup\"} 1");
  has("# TYPE blobfs_request_duration_seconds histogram");
  has("blobfs_request_duration_seconds_bucket{op=\"read\",le=\"1e-05\"} 0");
  has("blobfs_request_duration_seconds_bucket{op=\"read\",le=\"2.5e-05\"} 1");
  has("blobfs_request_duration_seconds_bucket{op=\"read\",le=\"0.0025\"} 1");
  has("blobfs_request_duration_seconds_bucket{op=\"read\",le=\"0.01\"} 2");
  has("blobfs_request_duration_seconds_bucket{op=\"read\",le=\"1\"} 2");
  has("blobfs_request_duration_seconds_bucket{op=\"read\",le=\"+Inf\"} 3");
  has("blobfs_request_duration_seconds_count{op=\"read\"} 3");
  has("blobfs_request_duration_seconds_sum{op=\"read\"} 5.00302");
  has("blobfs_read_bytes_total 4096");
  has("blobfs_errors_total{errno=\"ENOENT\"} 2");
  has("blobfs_errors_total{errno=\"EIO\"} 1");
  has("blobfs_refreshes_total{result=\"commit\"} 1");
  has("blobfs_refreshes_total{result=\"unchanged\"} 0");
  has("# TYPE blobfs_items gauge");
  has("blobfs_items{source=\"/x\"} 10");  // integers as integers, not 1e+01
  has("blobfs_ratio 0.25");
  // No histogram lines for kinds never seen.
  CHECK(t.find("blobfs_request_duration_seconds_count{op=\"write\"}") == std::string::npos);
  // Every sample line is NAME[{labels}] VALUE.
  size_t start = 0;
  while (start < t.size()) {
    const size_t end = t.find('\n', start);
    const std::string line = t.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    INFO(line);
    CHECK(line.find(' ') != std::string::npos);
    CHECK(line.rfind(' ') == line.find_last_of(' '));
  }
}

TEST_CASE("label values are escaped as the exposition format says") {
  CHECK(escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(escape_label_value("/data/emb") == "/data/emb");
}

TEST_CASE("metrics_listen is HOST:PORT or [IPV6]:PORT") {
  ListenAddress a = parse_listen_address("127.0.0.1:9464");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 9464);
  a = parse_listen_address("[::1]:80");
  CHECK(a.host == "::1");
  CHECK(a.port == 80);
  CHECK(parse_listen_address("localhost:65535").port == 65535);
  for (const char* bad : {"", "9464", "localhost", ":9464", "host:", "host:0", "host:65536", "host:12x", "::1:80",
                          "[::1]80", "[::1]:", "[::1", "host:-1"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_listen_address(bad), std::invalid_argument);
  }
  Options o;
  set_option(o, "metrics_listen", "127.0.0.1:9464", "-o");
  CHECK(o.metrics_listen == "127.0.0.1:9464");
  CHECK_THROWS_WITH(set_option(o, "metrics_listen", "9464", "-o"), Catch::StartsWith("-o: metrics_listen: expected HOST:PORT"));
  set_option(o, "metrics_listen", "", "-o");
  CHECK(o.metrics_listen.empty());
}
