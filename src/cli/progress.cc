#include "progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace tblob {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)), total_(total), enabled_(::isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() {
  if (enabled_ && last_draw_ > 0) std::fprintf(stderr, "\r\033[K");
}

void Progress::advance(uint64_t bytes) {
  done_ += bytes;
  draw(false);
}

void Progress::draw(bool force) {
  if (!enabled_) return;
  double t = now_s();
  if (!force && t - last_draw_ < 0.1) return;  // at most ten redraws a second
  last_draw_ = t;
  constexpr int kWidth = 30;
  double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  if (frac > 1) frac = 1;
  int filled = static_cast<int>(frac * kWidth);
  std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %.1f/%.1f MB", label_.c_str(), filled,
               "##############################", kWidth - filled, "", static_cast<int>(frac * 100),
               static_cast<double>(done_) / 1e6, static_cast<double>(total_) / 1e6);
  std::fflush(stderr);
}

}  // namespace tblob
