# agave_h5probe: reads one untrusted shard's HDF5 header in a process of its own, for
# hdf5/header_probe.h. Built from the shard reader's own source without LibTorch (the data
# library's objects use the LibTorch precompiled header), so it starts in milliseconds.
add_executable(agave_h5probe h5probe_main.cpp ${PROJECT_SOURCE_DIR}/data/shard.cpp)
target_link_libraries(agave_h5probe PRIVATE agave_common agave_hdf5 agave_io agave_version HDF5::HDF5)
# Fail closed needs the probe present: whatever links the data library (agave_trainer,
# agave_eval, agave_data, the tests) builds the probe too, also in the quickstart's build of
# agave_trainer alone; so does whatever links checkpoint/ (checkpoint shards are probed too).
add_dependencies(agave_data agave_h5probe)
add_dependencies(agave_checkpoint agave_h5probe)
