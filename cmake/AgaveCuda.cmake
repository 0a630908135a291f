# Detects whether the linked LibTorch has CUDA, and NCCL under AGAVE_CUDA_ROOT.
# Sets AGAVE_WITH_CUDA, AGAVE_WITH_NCCL, AGAVE_NCCL_STATUS and the imported target agave::nccl.
set(AGAVE_WITH_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  set(AGAVE_WITH_CUDA ON)
endif()

find_package(NCCL)
set(AGAVE_WITH_NCCL OFF)
if(NCCL_FOUND AND AGAVE_WITH_CUDA)
  set(AGAVE_WITH_NCCL ON)
  set(AGAVE_NCCL_STATUS "found ${NCCL_LIBRARY}")
elseif(NCCL_FOUND)
  set(AGAVE_NCCL_STATUS "found ${NCCL_LIBRARY}, unused: LibTorch is a CPU build")
else()
  set(AGAVE_NCCL_STATUS "not found under ${AGAVE_CUDA_ROOT}")
endif()
