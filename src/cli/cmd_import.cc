#include <optional>

#include "commands.h"
#include "input_file.h"
#include "progress.h"
#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "tensorblob/npy.h"
#include "tensorblob/store.h"

namespace tblob {

namespace {

using tensorblob::DType;
using tensorblob::Errc;
using tensorblob::Error;
using tensorblob::Shape;

// One input file, checked before anything is written.
struct Source {
  InputFile file;
  uint64_t data_offset = 0;
  int64_t tensors = 0;
};

// dtype and item shape from a .npy header (its first axis counts tensors).
std::pair<DType, Shape> config_from_npy(const tensorblob::NpyHeader& h, const std::string& path) {
  auto dt = tensorblob::dtype_from_typestr(h.descr);
  if (!dt) throw Error(Errc::kFormat, path + ": numpy dtype '" + h.descr + "' cannot be stored in a blob");
  if (h.shape.empty()) throw Error(Errc::kFormat, path + ": a 0-d array has no axis of tensors; give --shape ''");
  return {*dt, Shape(h.shape.begin() + 1, h.shape.end())};
}

Source check_file(InputFile info, DType dtype, const Shape& shape, int64_t item_bytes, bool raw_allowed) {
  Source s;
  const std::string path = info.path;
  const std::string dtname(tensorblob::dtype_info(dtype).name);
  if (!info.npy) {
    if (!raw_allowed) throw Error(Errc::kFormat, path + ": not a .npy file (raw files need --dtype and --shape)");
    if (info.size % static_cast<uint64_t>(item_bytes) != 0)
      throw Error(Errc::kFormat, path + ": raw file of " + std::to_string(info.size) +
                                     " bytes is not a whole number of " + std::to_string(item_bytes) + "-byte tensors");
    s.tensors = static_cast<int64_t>(info.size / static_cast<uint64_t>(item_bytes));
    s.file = std::move(info);
    return s;
  }
  const auto& h = *info.npy;
  if (h.descr.find('O') != std::string::npos) throw Error(Errc::kFormat, path + ": object arrays cannot be stored in a blob");
  auto dt = tensorblob::dtype_from_typestr(h.descr);
  if (!dt) throw Error(Errc::kFormat, path + ": numpy dtype '" + h.descr + "' cannot be stored in a blob");
  if (*dt != dtype)
    throw Error(Errc::kFormat, path + ": dtype " + h.descr + " (" + std::string(tensorblob::dtype_info(*dt).name) +
                                   ") does not match the blob's " + dtname);
  std::optional<int64_t> n = tensorblob::tensors_in_shape(h.shape, shape);
  if (!n)
    throw Error(Errc::kFormat, path + ": shape " + tensorblob::shape_to_string(h.shape) + " is neither " +
                                   tensorblob::shape_to_string(shape) + " nor (n, *" +
                                   tensorblob::shape_to_string(shape) + ")");
  check_npy_payload(info, tensorblob::shape_elements(h.shape), tensorblob::dtype_info(dtype).itemsize);
  s.tensors = *n;
  s.data_offset = h.data_offset;
  s.file = std::move(info);
  return s;
}

}  // namespace

int cmd_import(const ParsedArgs& args) {
  if (args.positional.size() < 2) throw UsageError("expected DIR and at least one FILE");
  const std::string dir = args.positional[0];
  const std::vector<std::string> files(args.positional.begin() + 1, args.positional.end());
  auto dtype_opt = args.get("--dtype");
  auto shape_opt = args.get("--shape");
  if (dtype_opt.has_value() != shape_opt.has_value()) throw UsageError("--dtype and --shape go together");

  const bool exists = tensorblob::store_kind(dir) == tensorblob::StoreKind::kBlob;
  if (!exists && !args.has("--create"))
    throw Error(Errc::kNotFound, dir + ": no such blob (use --create to make one)");
  tensorblob::OpenOptions o;
  if (auto bs = args.get("--block-size")) o.block_size = parse_int(*bs, "--block-size");
  if (dtype_opt) {
    o.dtype = *dtype_opt;
    o.shape = parse_shape(*shape_opt);
  }

  // Every input is opened and checked before the blob is opened, let alone
  // created: a bad last file leaves nothing behind.
  std::vector<InputFile> inputs;
  for (const auto& f : files) inputs.push_back(open_input(f));
  std::optional<tensorblob::Blob> blob;
  tensorblob::BlobConf conf;
  if (exists) {
    blob.emplace(tensorblob::Blob::open(dir, "a", o));
    conf = blob->conf();
    if (dtype_opt && (tensorblob::parse_dtype(*dtype_opt) != conf.dtype || *o.shape != conf.shape))
      throw UsageError("--dtype/--shape " + *dtype_opt + " " + tensorblob::shape_to_string(*o.shape) +
                       " differ from the blob's " + std::string(tensorblob::dtype_info(conf.dtype).name) + " " +
                       tensorblob::shape_to_string(conf.shape));
  } else {
    if (!dtype_opt) {
      if (!inputs[0].npy) throw UsageError(files[0] + " is not a .npy file: give --dtype and --shape");
      auto [dt, shape] = config_from_npy(*inputs[0].npy, files[0]);
      o.dtype = std::string(tensorblob::dtype_info(dt).name);
      o.shape = shape;
    }
    try {
      conf = tensorblob::make_blob_conf(dir, o.dtype, *o.shape, o.block_size);
    } catch (const tensorblob::FormatError& e) {
      throw Error(Errc::kInvalidArgument, e.what());
    }
  }

  std::vector<Source> sources;
  uint64_t total = 0;
  for (auto& f : inputs) {
    sources.push_back(check_file(std::move(f), conf.dtype, conf.shape, conf.item_bytes, dtype_opt.has_value()));
    total += static_cast<uint64_t>(sources.back().tensors) * static_cast<uint64_t>(conf.item_bytes);
  }
  if (!blob) blob.emplace(tensorblob::Blob::open(dir, "w", o));

  const int64_t item = conf.item_bytes;
  const int64_t chunk = std::max<int64_t>(1, (int64_t{8} << 20) / item);
  std::vector<std::byte> buf(static_cast<size_t>(std::min<int64_t>(chunk, 1 << 20) * item));
  const int64_t per_read = static_cast<int64_t>(buf.size()) / item;
  try {
    Progress progress("import", total);
    for (auto& s : sources) {
      for (int64_t done = 0; done < s.tensors;) {
        int64_t k = std::min(per_read, s.tensors - done);
        size_t want = static_cast<size_t>(k * item);
        read_exact(s.file, buf.data(), want, s.data_offset + static_cast<uint64_t>(done * item));
        blob->write_raw(buf.data(), k);
        progress.advance(want);
        done += k;
      }
    }
  } catch (...) {
    // Nothing of a failed import is committed.
    blob->discard();
    throw;
  }
  blob->close();
  return kExitOk;
}

}  // namespace tblob
