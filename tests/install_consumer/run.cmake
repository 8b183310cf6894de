# CTest driver (cmake -P): installs the ringkv build into a fresh temporary prefix, configures and
# builds the consumer project against it with find_package(ringkv), and runs the result.
# Inputs: BUILD_DIR (the ringkv build), SOURCE_DIR (this folder), WORK_DIR (scratch), GENERATOR,
# CXX_COMPILER, LAUNCHER and SANITIZE (may be empty).
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_consumer: ${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

run_step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(f include/ringkv/client.h include/ringkv/status.h include/ringkv/ring.h
          include/ringkv/token.h)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install_consumer: ${f} was not installed")
  endif()
endforeach()

set(launcher_arg "")
if(LAUNCHER)
  set(launcher_arg -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
# A sanitized ringkv build installs a sanitized library: its consumer links with the same flags.
set(sanitize_args "")
if(SANITIZE)
  set(sanitize_args "-DCMAKE_CXX_FLAGS=-fsanitize=${SANITIZE}"
                    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=${SANITIZE}")
endif()
run_step("configuring the consumer" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build
         -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
         -DCMAKE_PREFIX_PATH=${prefix} ${launcher_arg} ${sanitize_args})
run_step("building the consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step("running the consumer" ${WORK_DIR}/build/consumer)
if(NOT step_output MATCHES "^ok")
  message(FATAL_ERROR "install_consumer: unexpected output: ${step_output}")
endif()
message(STATUS "install_consumer: find_package(ringkv) and ringkv::client work from ${prefix}")
file(REMOVE_RECURSE ${WORK_DIR})
