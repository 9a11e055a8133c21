def test_health_reports_database_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json["db"] == "ok"
    assert response.json["status"] in {"ok", "degraded"}


def test_manager_sees_client_list(login_as):
    from tests.factories import make_client

    make_client(name="可见客户有限公司")
    c = login_as("manager")
    response = c.get("/clientmodelview/list/")
    assert response.status_code == 200
    assert "可见客户有限公司" in response.get_data(as_text=True)
