// norm kernels: see kernels/cuda/README (being written)
#include "common.cuh"
