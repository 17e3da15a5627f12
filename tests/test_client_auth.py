import time
def test_explore(live_server, psql_url, tmp_path_factory):
    import os
    open("/tmp/explore/info", "w").write(f"{live_server}\n{psql_url}\n{os.environ['CITY_SECURITY_KEY_DIR']}\n")
    while not os.path.exists("/tmp/explore/stop"):
        time.sleep(1)
