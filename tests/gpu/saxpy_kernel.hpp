#pragma once
#include <cuda_runtime.h>

/// y = a*x + y on `stream`; returns the launch error.
cudaError_t launch_saxpy(int n, float a, const float* x, float* y, cudaStream_t stream);
