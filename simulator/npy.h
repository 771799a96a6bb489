// Tensors in and out of the simulator as NumPy .npy files, so inputs can be made and outputs
// checked with numpy. Reading accepts format versions 1.0-3.0; writing produces the exact bytes
// numpy.save writes for the same array. Every problem with a file is a tpusim::Error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ir/dtype.h"

namespace tpusim {

// A dense row-major (C order) tensor in host memory.
struct HostTensor {
  DType dtype = DType::Int8;
  std::vector<int64_t> shape;  // empty = a 0-D tensor holding one element
  std::vector<uint8_t> bytes;  // element_count() * dtype_size(dtype) bytes, little-endian

  int64_t element_count() const;  // product of shape (1 for 0-D)
};

// The numpy dtype descriptor tpusim uses for each type: '|i1', '<i4', '<u2', '<f4'.
// numpy has no bfloat16, so bf16 tensors travel as their uint16 bit patterns ('<u2'); view
// them in numpy with `(a.astype(np.uint32) << 16).view(np.float32)`.
std::string npy_descr(DType dtype);

// Reads a .npy file. Accepted descriptors: '|i1' (also '<i1', 'i1') = int8, '<i4' = int32,
// '<u2' = bf16 bit patterns, '<f4' = fp32; C order, little-endian, nothing after the data.
// A file larger than `expected_data_bytes` plus the largest header is refused before it is
// read (so a wrong path to a huge file cannot take the memory); pass the bytes of the tensor
// the file is for.
HostTensor read_npy(const std::string& path, int64_t expected_data_bytes = INT64_MAX);

// Writes `tensor` as a format 1.0 .npy file, byte-identical to numpy.save (numpy >= 1.24,
// which leaves spare header room for growing the first axis in place).
void write_npy(const std::string& path, const HostTensor& tensor);

// The in-memory forms of read_npy / write_npy. `source_name` is the file name errors report.
HostTensor parse_npy(std::string_view file_bytes, const std::string& source_name);
std::string encode_npy(const HostTensor& tensor);

}  // namespace tpusim
