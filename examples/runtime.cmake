# Examples of the runtime layer: json2heap, and json_bench (the in-process
# half of tools/bench/json_vs_node.sh).
add_executable(json2heap ${CMAKE_CURRENT_SOURCE_DIR}/json2heap.c)
target_compile_options(json2heap PRIVATE ${TENURE_WARNINGS})
target_link_libraries(json2heap PRIVATE tenure_runtime)
if(TENURE_JEMALLOC)
  target_link_libraries(json2heap PRIVATE PkgConfig::JEMALLOC)
endif()

add_executable(json_bench ${PROJECT_SOURCE_DIR}/tools/bench/json_bench.c)
target_compile_options(json_bench PRIVATE ${TENURE_WARNINGS})
target_link_libraries(json_bench PRIVATE tenure_runtime)
if(TENURE_JEMALLOC)
  target_link_libraries(json_bench PRIVATE PkgConfig::JEMALLOC)
endif()

# tenure-server: the demo application and the project's main program
# (tools/run.sh starts it).
add_executable(tenure-server ${CMAKE_CURRENT_SOURCE_DIR}/tenure_server.c)
target_compile_options(tenure-server PRIVATE ${TENURE_WARNINGS})
target_link_libraries(tenure-server PRIVATE tenure_cache tenure_runtime)
if(TENURE_JEMALLOC)
  target_link_libraries(tenure-server PRIVATE PkgConfig::JEMALLOC)
endif()
install(TARGETS tenure-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
