#include <cstdio>

#include "commands.h"
#include "input_file.h"
#include "progress.h"
#include "tensorblob/error.h"
#include "tensorblob/ragged.h"

namespace tblob {

int cmd_build(const ParsedArgs& args) {
  if (args.positional.size() < 2) throw UsageError("expected BASE and at least one FILE.npy");
  const std::string base = args.positional[0];
  std::vector<InputFile> files;
  uint64_t total = 0;
  // Every header is checked before anything is written.
  for (size_t i = 1; i < args.positional.size(); ++i) {
    InputFile f = open_input(args.positional[i]);
    if (!f.npy) throw tensorblob::Error(tensorblob::Errc::kFormat, f.path + ": not a .npy file");
    auto dt = tensorblob::numpy_dtype_from_typestr(f.npy->descr, f.path);
    check_npy_payload(f, tensorblob::shape_elements(f.npy->shape), dt.itemsize);
    total += f.size - f.npy->data_offset;
    files.push_back(std::move(f));
  }
  tensorblob::RaggedBuilder builder(base);
  Progress progress("build", total);
  std::vector<char> buf;
  for (const auto& f : files) {
    size_t n = static_cast<size_t>(f.size - f.npy->data_offset);
    buf.resize(n);
    read_exact(f, buf.data(), n, f.npy->data_offset);
    builder.add(f.npy->descr, f.npy->shape, buf.data(), n, f.path);
    progress.advance(n);
  }
  builder.commit();
  return kExitOk;
}

}  // namespace tblob
