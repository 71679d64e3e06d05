// An owned, contiguous, C-order tensor: the values a Blob reads and writes.
//
// Tensor owns its bytes (zero-initialised on construction). It carries no
// strides: data is always C order in the machine's byte order, exactly as in
// the block files. Not thread-safe; copy it to share.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <span>
#include <vector>

#include "tensorblob/dtype.h"

namespace tensorblob {

namespace detail {
// Leaves bytes uninitialised on resize, so a tensor about to be overwritten
// by a read is not zero-filled first (one pass over memory instead of two).
template <typename T>
struct DefaultInitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using std::allocator<T>::allocator;
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
}  // namespace detail

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor of the given dtype and shape.
  Tensor(DType dtype, Shape shape);
  // A tensor whose bytes the caller will overwrite entirely (not zero-filled).
  static Tensor uninitialized(DType dtype, Shape shape);

  // A tensor holding a copy of `values`, with `shape` (whose element count must
  // match). T's size must equal the dtype's itemsize.
  template <typename T>
  static Tensor from(DType dtype, Shape shape, std::span<const T> values) {
    Tensor t(dtype, std::move(shape));
    if (values.size_bytes() != t.nbytes()) throw_size_mismatch(values.size_bytes(), t.nbytes());
    if (!values.empty()) std::memcpy(t.data(), values.data(), t.nbytes());
    return t;
  }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  size_t nbytes() const { return bytes_.size(); }
  std::byte* data() { return bytes_.data(); }
  const std::byte* data() const { return bytes_.data(); }

  // The elements as T; T's size must equal the dtype's itemsize.
  template <typename T>
  std::span<const T> values() const {
    check_elem_size(sizeof(T));
    return {reinterpret_cast<const T*>(bytes_.data()), bytes_.size() / sizeof(T)};
  }
  template <typename T>
  std::span<T> values() {
    check_elem_size(sizeof(T));
    return {reinterpret_cast<T*>(bytes_.data()), bytes_.size() / sizeof(T)};
  }

  bool operator==(const Tensor& other) const = default;

 private:
  void check_elem_size(size_t size) const;
  [[noreturn]] static void throw_size_mismatch(size_t got, size_t want);

  DType dtype_ = DType::kUInt8;
  Shape shape_;
  std::vector<std::byte, detail::DefaultInitAllocator<std::byte>> bytes_;
};

}  // namespace tensorblob
