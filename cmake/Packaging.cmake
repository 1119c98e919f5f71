# A Debian package of trading-heal: `cmake --build B && (cd B && cpack -G DEB)` makes
# B/trading-heal_<version>_<arch>.deb with
#   /usr/bin/trading-heal-{probe,diagnoser,actuator,exporter,ctl,tap}
#   /lib/systemd/system/trading-heal-*@.service, trading-heal@.target   (ExecStart= in /usr/bin)
#   /usr/share/trading-heal/deploy/   deploy.sh, the env example, permission generators,
#                                     Prometheus, Alertmanager and Grafana files
#   /usr/share/trading-heal/systemd/  the units as shipped (what deploy.sh renders from)
#   /usr/share/doc/trading-heal/      README.md (the units' Documentation=), copyright
# The package installs files only: no users, no env file, nothing started. Then run
#   /usr/share/trading-heal/deploy/deploy.sh --from-package [--instance NAME]
# which creates the users, the env file, the actuator's permission and the Prometheus jobs,
# uses the packaged binaries and units, and starts trading-heal@NAME.target.
# Included from the root CMakeLists.txt after the components: include(cmake/Packaging.cmake)
include_guard(GLOBAL)

set(_th_pkg_root ${CMAKE_CURRENT_LIST_DIR}/..)
set(_th_pkg_gen ${CMAKE_BINARY_DIR}/packaging)

foreach(_c probe diagnoser actuator exporter)
  if(TARGET trading-heal-${_c})
    install(TARGETS trading-heal-${_c} RUNTIME DESTINATION bin)
  endif()
endforeach()
# trading-heal-ctl and trading-heal-tap install themselves (tools/*/CMakeLists.txt).

# The units with ExecStart= pointing at the packaged binaries.
file(GLOB _th_units ${_th_pkg_root}/systemd/trading-heal-*@.service ${_th_pkg_root}/systemd/trading-heal@.target)
foreach(_u IN LISTS _th_units)
  get_filename_component(_name ${_u} NAME)
  file(READ ${_u} _text)
  string(REPLACE "ExecStart=/usr/local/bin/" "ExecStart=/usr/bin/" _text "${_text}")
  file(WRITE ${_th_pkg_gen}/units/${_name} "${_text}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_u})
  install(FILES ${_th_pkg_gen}/units/${_name} DESTINATION /lib/systemd/system)
  install(FILES ${_u} DESTINATION share/trading-heal/systemd)
endforeach()

install(PROGRAMS ${_th_pkg_root}/deploy/deploy.sh DESTINATION share/trading-heal/deploy)
install(FILES ${_th_pkg_root}/deploy/trading-heal.env.example ${_th_pkg_root}/deploy/trading-heal.probe.env.example
              ${_th_pkg_root}/deploy/trading-heal.diagnoser.env.example
              ${_th_pkg_root}/deploy/trading-heal.exporter.env.example DESTINATION share/trading-heal/deploy)
install(PROGRAMS ${_th_pkg_root}/deploy/permissions/gen-polkit-rule.sh
        DESTINATION share/trading-heal/deploy/permissions)
install(FILES ${_th_pkg_root}/deploy/permissions/common.sh DESTINATION share/trading-heal/deploy/permissions)
foreach(_d prometheus alertmanager grafana)
  if(EXISTS ${_th_pkg_root}/deploy/${_d})
    install(DIRECTORY ${_th_pkg_root}/deploy/${_d} DESTINATION share/trading-heal/deploy)
  endif()
endforeach()
install(FILES ${_th_pkg_root}/deploy/rules/trading-heal.rules DESTINATION share/trading-heal/rules)
install(FILES ${_th_pkg_root}/README.md DESTINATION share/doc/trading-heal)
file(WRITE ${_th_pkg_gen}/copyright
  "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
  "Upstream-Name: trading-heal\n\nFiles: *\nCopyright: the trading-heal authors\n"
  "License: see the project repository\n")
install(FILES ${_th_pkg_gen}/copyright DESTINATION share/doc/trading-heal)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME trading-heal)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "trading-heal")
set(CPACK_PACKAGE_CONTACT "trading-heal maintainers <root@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Self-healing supervisor for automated trading agents run as systemd units")
set(CPACK_PACKAGE_DESCRIPTION
    "Watches crypto-agent@ units (unit state, process, decision freshness in PostgreSQL), diagnoses\nfailures with a local LLM (Ollama) and restarts stalled agents within rate limits; Prometheus\nmetrics, audit API, alert rules and a Grafana dashboard.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from the binaries (dpkg-shlibdeps), plus what deploy.sh and the units use.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd, curl")
# polkitd: the actuator's permission (deploy.sh's rule). Prometheus often runs on another host:
# only suggested, or `apt-get install ./trading-heal_*.deb` would bring a server and its exporters.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "polkitd, jq")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus, prometheus-alertmanager, postgresql-client")
set(CPACK_STRIP_FILES ON)
include(CPack)
