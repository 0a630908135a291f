# agave_compare: paired comparison of arms × seeds from agave_eval --per-image files (analysis/).
agave_executable(agave_compare compare_main.cpp)
