# tenure_add_test(<layer>.<module> SOURCES <src>... LIBS <lib>... [HEAP]
#                 [LABELS <label>...] [TIMEOUT <s>] [ARGS <arg>...])
#
# Registers, from one cmocka executable, up to four ctest entries:
#   <layer>.<module>            labels: <layer> and LABELS
#   <layer>.<module>.stress     TENURE_OPTIONS="--stress-gc --verify-heap"
#                               (only with HEAP: the test runs a heap)   label: stress
#   <layer>.<module>.valgrind   valgrind memcheck, any error fails       label: valgrind
#   <layer>.<module>.sanitize   the same sources linked against the
#                               ASan+UBSan twins of LIBS                 label: sanitize
# so `ctest -L stress`, `ctest -L valgrind`, `ctest -L sanitize` run each pass.
find_program(VALGRIND_EXE valgrind)
set(TENURE_VALGRIND_CMD ${VALGRIND_EXE} --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
    --track-origins=yes --soname-synonyms=somalloc=*jemalloc* -q)

function(tenure_add_test name)
  cmake_parse_arguments(A "HEAP" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS;ENV" ${ARGN})
  string(REPLACE "." "_" exe "test_${name}")
  string(REGEX REPLACE "\\..*" "" layer "${name}")
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_executable(${exe} ${A_SOURCES})
  target_compile_options(${exe} PRIVATE ${TENURE_WARNINGS})
  target_include_directories(${exe} PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
  target_link_libraries(${exe} PRIVATE ${A_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${exe} ${A_ARGS})
  set_tests_properties(${name} PROPERTIES LABELS "${layer};${A_LABELS}"
    TIMEOUT ${A_TIMEOUT} ENVIRONMENT "${A_ENV}")
  if(A_HEAP)
    add_test(NAME ${name}.stress COMMAND ${exe} ${A_ARGS})
    set_tests_properties(${name}.stress PROPERTIES LABELS "stress;${layer}"
      TIMEOUT ${A_TIMEOUT}
      ENVIRONMENT "TENURE_OPTIONS=--stress-gc --verify-heap;TENURE_TEST_STRESS=1;${A_ENV}")
  endif()
  if(TENURE_VALGRIND_TESTS AND VALGRIND_EXE)
    add_test(NAME ${name}.valgrind COMMAND ${TENURE_VALGRIND_CMD} $<TARGET_FILE:${exe}> ${A_ARGS})
    math(EXPR vt "${A_TIMEOUT} * 4")
    set_tests_properties(${name}.valgrind PROPERTIES LABELS "valgrind;${layer}"
      TIMEOUT ${vt} ENVIRONMENT "TENURE_TEST_VALGRIND=1;${A_ENV}")
  endif()
  if(TENURE_SANITIZE_TESTS)
    set(san_libs "")
    foreach(l ${A_LIBS})
      if(TARGET ${l}_san)
        list(APPEND san_libs ${l}_san)
      else()
        list(APPEND san_libs ${l})
      endif()
    endforeach()
    add_executable(${exe}_san ${A_SOURCES})
    target_compile_options(${exe}_san PRIVATE ${TENURE_WARNINGS} ${TENURE_SAN_FLAGS})
    target_compile_definitions(${exe}_san PRIVATE TENURE_SANITIZE=1)
    target_link_options(${exe}_san PRIVATE ${TENURE_SAN_FLAGS})
    target_include_directories(${exe}_san PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
    target_link_libraries(${exe}_san PRIVATE ${san_libs} PkgConfig::CMOCKA)
    add_test(NAME ${name}.sanitize COMMAND ${exe}_san ${A_ARGS})
    set_tests_properties(${name}.sanitize PROPERTIES LABELS "sanitize;${layer}"
      TIMEOUT ${A_TIMEOUT}
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1;TENURE_TEST_SANITIZE=1;${A_ENV}")
  endif()
endfunction()
