# Op tests: every tests/ops/<case>.net is compiled by netc, run forward and
# backward, and compared with the PyTorch reference in tests/reference/<case>/
# and with finite differences (tests/op_harness.c).  Adding a case is adding
# a .net file and a row in tests/reference/gen.py.
#
# Tests are named op.<backend>.<case> (the schedule's own choice of
# algorithms) and, for cases with a convolution, op.<backend>.<algo>.<case>
# with every convolution forced to direct and to im2col, and, for 2D cases
# with a 3x3 stride-1 convolution, to winograd (F(4x4,3x3)) and winograd2
# (F(2x2,3x3)), and, for 1D and 2D cases with an unstrided, undilated
# convolution of kernel 2 or more, to fft; op_harness exits 77 when a backend is not available, which
# CTest reports as skipped.
add_executable(op_harness ${CMAKE_CURRENT_SOURCE_DIR}/op_harness.c)
target_compile_options(op_harness PRIVATE ${NETC_WARN})
target_include_directories(op_harness PRIVATE ${CMAKE_SOURCE_DIR}/runtime)
# The harness compiles generated C with the same compiler as the build.
target_compile_definitions(op_harness PRIVATE NETC_TEST_CC="${CMAKE_C_COMPILER}")
# Under the sanitizers the generated code is built at -O0 (op_harness.c).
if(NETC_SANITIZE)
  target_compile_definitions(op_harness PRIVATE NETC_TEST_OPT=0)
endif()
target_link_libraries(op_harness PRIVATE netc_compiler ${CMAKE_DL_LIBS})

set(NETC_OP_BACKENDS c)
if(NETC_LLVM)
  list(APPEND NETC_OP_BACKENDS llvm)
endif()

file(GLOB NETC_OP_CASES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/ops/*.net)
foreach(net ${NETC_OP_CASES})
  get_filename_component(case ${net} NAME_WE)
  foreach(backend ${NETC_OP_BACKENDS})
    add_test(NAME op.${backend}.${case}
             COMMAND op_harness ${net} ${CMAKE_CURRENT_SOURCE_DIR}/reference/${case}
                     --backend ${backend})
    set_tests_properties(op.${backend}.${case} PROPERTIES
                         SKIP_RETURN_CODE 77 LABELS ops TIMEOUT 120)
    # Cases with a convolution also run with every convolution forced to
    # each algorithm: op.<backend>.<algo>.<case>.
    file(READ ${net} text)
    if(text MATCHES "conv(_transpose)?\\(")
      foreach(algo direct im2col)
        add_test(NAME op.${backend}.${algo}.${case}
                 COMMAND op_harness ${net} ${CMAKE_CURRENT_SOURCE_DIR}/reference/${case}
                         --backend ${backend} --algo ${algo})
        set_tests_properties(op.${backend}.${algo}.${case} PROPERTIES
                             SKIP_RETURN_CODE 77 LABELS ops TIMEOUT 120)
      endforeach()
    endif()
    # winograd: a 2D input and a conv(C, kernel=3 ...) without stride or dilation
    set(wino_conv "conv\\([0-9]+, kernel=3(, pad=(\\[[0-9, ]*\\]|[a-z0-9]+))?(, groups=[0-9]+)?(, bias=false)?\\)")
    if(text MATCHES "${wino_conv}" AND text MATCHES "input x: \\[[0-9]+, [0-9]+, [0-9]+\\]")
      foreach(algo winograd winograd2)
        add_test(NAME op.${backend}.${algo}.${case}
                 COMMAND op_harness ${net} ${CMAKE_CURRENT_SOURCE_DIR}/reference/${case}
                         --backend ${backend} --algo ${algo})
        set_tests_properties(op.${backend}.${algo}.${case} PROPERTIES
                             SKIP_RETURN_CODE 77 LABELS ops TIMEOUT 120)
      endforeach()
      # and F(4x4) on a 4-lane target without FMA
      if(backend STREQUAL "llvm")
        add_test(NAME op.${backend}.x86-64.winograd.${case}
                 COMMAND op_harness ${net} ${CMAKE_CURRENT_SOURCE_DIR}/reference/${case}
                         --backend ${backend} --cpu x86-64 --algo winograd)
        set_tests_properties(op.${backend}.x86-64.winograd.${case} PROPERTIES
                             SKIP_RETURN_CODE 77 LABELS ops TIMEOUT 120)
      endif()
    endif()
    # fft: a 1D or 2D input, a conv with a kernel of 2 or more and no
    # stride or dilation in the file (layers it does not fit keep the rule)
    if(text MATCHES "conv\\([0-9]+, kernel=([2-9]|[1-9][0-9]|\\[)" AND
       text MATCHES "input x: \\[[0-9]+, [0-9]+(, [0-9]+)?\\]" AND
       NOT text MATCHES "(stride|dilation)=")
      add_test(NAME op.${backend}.fft.${case}
               COMMAND op_harness ${net} ${CMAKE_CURRENT_SOURCE_DIR}/reference/${case}
                       --backend ${backend} --algo fft)
      set_tests_properties(op.${backend}.fft.${case} PROPERTIES
                           SKIP_RETURN_CODE 77 LABELS ops TIMEOUT 120)
    endif()
    # The default runs schedule for the host; these for a 4-lane target
    # without FMA and for a 16-lane one, so every vector width's code is
    # checked whatever machine runs the suite.
    if(backend STREQUAL "llvm")
      foreach(cpu x86-64 x86-64-v4)
        add_test(NAME op.${backend}.${cpu}.${case}
                 COMMAND op_harness ${net} ${CMAKE_CURRENT_SOURCE_DIR}/reference/${case}
                         --backend ${backend} --cpu ${cpu})
        set_tests_properties(op.${backend}.${cpu}.${case} PROPERTIES
                             SKIP_RETURN_CODE 77 LABELS ops TIMEOUT 120)
      endforeach()
    endif()
  endforeach()
endforeach()
