def test_it_answers_401_without_a_key(emulator):
    import httpx

    resp = httpx.get(f"{emulator.url}/api/v1/customers")
    assert resp.status_code == 401
    assert resp.json()["code"] == "Unauthenticated"


def test_it_creates_and_lists_customers(emulator, stigg):
    stigg.v1.customers.provision(id="smoke-1", name="Smoke One", email="one@example.com")
    page = stigg.v1.customers.list(limit=5)
    assert "smoke-1" in [c.id for c in page.data]
