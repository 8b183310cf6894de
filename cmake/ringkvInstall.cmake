# Install and export rules for the C++ client library: `cmake --install` puts the static libraries
# it needs (ringkv_client, ringkv_ring, ringkv_common), the public headers and a CMake package
# config under the prefix, so that another project can write
#
#   find_package(ringkv REQUIRED)
#   target_link_libraries(app PRIVATE ringkv::client)
#
# The system libraries underneath (OpenSSL, hiredis through pkg-config, threads) are found again by
# ringkvConfig.cmake in the consumer. tests/install_consumer checks all of this end to end.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RINGKV_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ringkv)

set_target_properties(ringkv_common PROPERTIES EXPORT_NAME common)
set_target_properties(ringkv_ring PROPERTIES EXPORT_NAME ring)
install(TARGETS ringkv_client ringkv_ring ringkv_common
        EXPORT ringkvTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# client.h includes status.h; ring.h includes status.h and token.h.
install(FILES ${PROJECT_SOURCE_DIR}/include/ringkv/client.h
              ${PROJECT_SOURCE_DIR}/include/ringkv/status.h
              ${PROJECT_SOURCE_DIR}/include/ringkv/ring.h
              ${PROJECT_SOURCE_DIR}/include/ringkv/token.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ringkv)
install(EXPORT ringkvTargets NAMESPACE ringkv:: DESTINATION ${RINGKV_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ringkvConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/ringkvConfig.cmake
                              INSTALL_DESTINATION ${RINGKV_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ringkvConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ringkvConfig.cmake ${PROJECT_BINARY_DIR}/ringkvConfigVersion.cmake
        DESTINATION ${RINGKV_CMAKE_DIR})
