# Chooses which LibTorch find_package(Torch) sees, before it is called.
#
#   AGAVE_TORCH=system (default)  whatever CMAKE_PREFIX_PATH / the system has: Debian's
#                                 libtorch-dev 1.13 (CPU) for the README's commands.
#   AGAVE_TORCH=pip               the LibTorch inside a pip-installed torch 2.x, found by asking
#                                 AGAVE_TORCH_PYTHON (default: .venv-torch2/bin/python, made by
#                                 scripts/install-torch2.sh) for torch.utils.cmake_prefix_path.
#   AGAVE_CUDA=ON                 fail at configure time unless CUDA and NCCL are both on, so a
#                                 "CUDA build" can never quietly come out as a CPU build.
#
# With a CUDA LibTorch, Caffe2's cuda.cmake enables the CUDA language and insists that nvcc's
# version equals the toolkit's; we hand it the toolkit under AGAVE_CUDA_ROOT explicitly rather
# than whatever nvcc is first on PATH. NCCL is taken from the nvidia-nccl wheel next to torch,
# the very library libtorch_cuda.so loads through its RPATH, so one libnccl.so.2 is in the
# process whatever the loader finds first.
set(AGAVE_TORCH "system" CACHE STRING "Which LibTorch: system (Debian's or CMAKE_PREFIX_PATH) or pip")
set_property(CACHE AGAVE_TORCH PROPERTY STRINGS system pip)
option(AGAVE_CUDA "Require a CUDA LibTorch and NCCL (configure fails otherwise)" OFF)
set(AGAVE_TORCH_PYTHON "${CMAKE_SOURCE_DIR}/.venv-torch2/bin/python" CACHE FILEPATH
  "Python whose torch provides LibTorch when AGAVE_TORCH=pip")

if(AGAVE_TORCH STREQUAL "pip")
  if(NOT EXISTS "${AGAVE_TORCH_PYTHON}")
    message(FATAL_ERROR "AGAVE_TORCH=pip: ${AGAVE_TORCH_PYTHON} does not exist; run "
      "scripts/install-torch2.sh first (or set AGAVE_TORCH_PYTHON)")
  endif()
  execute_process(
    COMMAND "${AGAVE_TORCH_PYTHON}" -c
      "import os, torch, torch.utils; print(torch.utils.cmake_prefix_path); print(os.path.dirname(torch.__file__))"
    OUTPUT_VARIABLE _agave_torch_out RESULT_VARIABLE _agave_torch_rc
    ERROR_VARIABLE _agave_torch_err OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _agave_torch_rc EQUAL 0)
    message(FATAL_ERROR "AGAVE_TORCH=pip: ${AGAVE_TORCH_PYTHON} cannot import torch:\n${_agave_torch_err}")
  endif()
  string(REPLACE "\n" ";" _agave_torch_out "${_agave_torch_out}")
  list(GET _agave_torch_out 0 AGAVE_TORCH_CMAKE_PREFIX)
  list(GET _agave_torch_out 1 _agave_torch_dir)
  list(PREPEND CMAKE_PREFIX_PATH "${AGAVE_TORCH_CMAKE_PREFIX}")
  # TorchConfig looks its libraries up with find_library(... PATHS <torch>/lib), and PATHS come
  # after the system directories: with Debian's libtorch-dev installed, c10_LIBRARY would be
  # Debian's 1.13 libc10.so, linked next to 2.x's libtorch. CMAKE_LIBRARY_PATH is searched
  # before the system directories. (torch/lib holds only torch's own libraries.)
  list(PREPEND CMAKE_LIBRARY_PATH "${_agave_torch_dir}/lib")
  # The wheels link Kineto (the profiler) into libtorch_cpu.so and ship no libkineto, so
  # TorchConfig's lookup would warn "library kineto not found"; pointing it at the library that
  # holds Kineto adds nothing to the link line that is not there already.
  if(NOT kineto_LIBRARY AND EXISTS "${_agave_torch_dir}/lib/libtorch_cpu.so")
    set(kineto_LIBRARY "${_agave_torch_dir}/lib/libtorch_cpu.so" CACHE FILEPATH
      "Kineto is inside libtorch_cpu.so in pip's torch")
  endif()
  # site-packages/nvidia/nccl: the NCCL wheel torch depends on (headers and libnccl.so.2).
  get_filename_component(_agave_site "${_agave_torch_dir}" DIRECTORY)
  if(NOT NCCL_ROOT AND EXISTS "${_agave_site}/nvidia/nccl/include/nccl.h")
    set(NCCL_ROOT "${_agave_site}/nvidia/nccl")
  endif()
endif()

if(AGAVE_CUDA OR AGAVE_TORCH STREQUAL "pip")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS "${AGAVE_CUDA_ROOT}/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "${AGAVE_CUDA_ROOT}/bin/nvcc")
  endif()
  if(NOT CUDA_TOOLKIT_ROOT_DIR AND EXISTS "${AGAVE_CUDA_ROOT}/bin/nvcc")
    set(CUDA_TOOLKIT_ROOT_DIR "${AGAVE_CUDA_ROOT}")
  endif()
  # No GPU at configure time: without a list, Caffe2 tries to detect the GPU's architecture,
  # warns, and falls back to a long list. Only CUDA sources we would compile ourselves use it
  # (agave has none); 9.0 is the H100/H200 of the GPU check.
  if(NOT TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
    set(TORCH_CUDA_ARCH_LIST "9.0")
  endif()
endif()
