// A progress bar on stderr for long commands, shown only when stderr is a
// terminal (pipes and logs stay clean). Not thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace tblob {

class Progress {
 public:
  Progress(std::string label, uint64_t total);  // total in bytes
  ~Progress();                                  // clears the line
  void advance(uint64_t bytes);
  // For work whose size is learnt once it starts (a transfer's listing).
  void set_total(uint64_t total) { total_ = total; }

 private:
  void draw(bool force);

  std::string label_;
  uint64_t total_, done_ = 0;
  bool enabled_;
  double last_draw_ = 0;
};

}  // namespace tblob
