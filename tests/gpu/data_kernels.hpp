#pragma once
#include <cuda_runtime.h>

#include <cstddef>

/// x[i] = x[i] * a + b (bytes), on `s`.
cudaError_t launch_affine(unsigned char* x, size_t n, int a, int b, cudaStream_t s);
/// x[i] = i * a + b (bytes), on `s`.
cudaError_t launch_fill(unsigned char* x, size_t n, int a, int b, cudaStream_t s);
