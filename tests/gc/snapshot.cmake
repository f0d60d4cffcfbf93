# Heap-snapshot tests (issue 3): the C test writes snapshots of a known heap
# and hands them to node (tests/gc/snapshot_check.js) and tenure-heap.
# Without node the node checks print SKIP.  memlab is used when
# TENURE_MEMLAB_DIR names a directory where `npm install memlab` was run.
find_program(NODE_EXE node)
set(snap_node "-")
if(NODE_EXE)
  set(snap_node ${NODE_EXE})
endif()
set(snap_heap "-")
if(TARGET tenure-heap)
  set(snap_heap $<TARGET_FILE:tenure-heap>)
endif()
set(snap_env "")
if(DEFINED ENV{TENURE_MEMLAB_DIR})
  set(snap_env "TENURE_MEMLAB_DIR=$ENV{TENURE_MEMLAB_DIR}")
endif()
tenure_add_test(gc.snapshot HEAP SOURCES test_snapshot.c LIBS tenure
  ARGS ${snap_node} ${CMAKE_CURRENT_SOURCE_DIR}/snapshot_check.js ${snap_heap}
  ENV ${snap_env})
