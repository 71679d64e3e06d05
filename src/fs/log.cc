#include "log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <unordered_set>

#include <syslog.h>

namespace blobfs {

namespace {
std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<bool> g_syslog{false};

int syslog_priority(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return LOG_ERR;
    case LogLevel::kWarning: return LOG_WARNING;
    case LogLevel::kInfo: return LOG_INFO;
    case LogLevel::kDebug: return LOG_DEBUG;
  }
  return LOG_INFO;
}
std::mutex g_once_mu;
std::unordered_set<std::string> g_seen;
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }

std::string escape_for_log(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void log_to_syslog() {
  ::openlog("blobfs", LOG_PID, LOG_DAEMON);
  g_syslog = true;
}

void log(LogLevel level, const std::string& message) {
  if (level > g_level.load()) return;
  const std::string line = escape_for_log(message);
  if (g_syslog) return ::syslog(syslog_priority(level), "%s", line.c_str());
  // One fprintf per line so lines from worker threads never interleave.
  std::fprintf(stderr, "blobfs: %s: %s\n", std::string(log_level_name(level)).c_str(), line.c_str());
}

void log_once(LogLevel level, const std::string& key, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(g_once_mu);
    if (g_seen.count(key) || g_seen.size() >= 10000) return;
    g_seen.insert(key);
  }
  log(level, message);
}

}  // namespace blobfs
