"""The demo: "Tessellate AI", a company that sells through Stigg, built in the emulator
through its public REST API (seed.py, with catalog.py, company.py, usage.py and
history.py), a bulk seeder for fleets of thousands of customers (bulk.py) and the live
traffic of its application (simulator.py). Everything here is a client of the API; it
never reaches into the emulator's storage, except the bulk seeder's direct path.
"""
