# agave_data: convert raw sources to HDF5 shards, inspect/verify shards, fetch CIFAR-10.
agave_executable(agave_data_cli data_main.cpp)
set_target_properties(agave_data_cli PROPERTIES OUTPUT_NAME agave_data)
