"""A realistic-size corpus, generated (never committed): one shop environment whose
every scenario carries the whole database (customers, orders, products), as
customer-service benchmarks converted to EnvScaler's format do.

    .venv/bin/python -m bench.bigcorpus OUT_DIR --scenarios 100 --state-mb 3

writes OUT_DIR/envs.json and OUT_DIR/scenarios.json (streamed, one scenario at a
time). Deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV_ID = "shop_db"
CLASS_NAME = "ShopDatabase"
CODE = '''from typing import Any, Dict


class ShopDatabase:
    def __init__(self, init_config: dict):
        self.customers: Dict[str, dict] = {}
        self.orders: Dict[str, dict] = {}
        self.products: Dict[str, dict] = {}

    def get_customer(self, customer_id: str) -> dict:
        """Look up a customer by id."""
        customer = self.customers.get(customer_id)
        if customer is None:
            return {"success": False, "error": f"no customer {customer_id}"}
        return {"success": True, "data": customer}

    def get_order(self, order_id: str) -> dict:
        """Look up an order by id."""
        order = self.orders.get(order_id)
        if order is None:
            return {"success": False, "error": f"no order {order_id}"}
        return {"success": True, "data": order}

    def list_orders(self, customer_id: str) -> dict:
        """The ids of a customer's orders."""
        if customer_id not in self.customers:
            return {"success": False, "error": f"no customer {customer_id}"}
        return {"success": True, "data": list(self.customers[customer_id]["order_ids"])}

    def cancel_order(self, order_id: str, reason: str) -> dict:
        """Cancel a pending order and put its items back in stock."""
        order = self.orders.get(order_id)
        if order is None:
            return {"success": False, "error": f"no order {order_id}"}
        if order["status"] != "pending":
            return {"success": False, "error": f"order {order_id} is {order['status']}"}
        order["status"] = "cancelled"
        order["cancel_reason"] = reason
        for item in order["items"]:
            self.products[item["product_id"]]["stock"] += item["quantity"]
        return {"success": True, "message": f"order {order_id} cancelled"}
'''


def env_record() -> dict[str, Any]:
    def tool(name: str, description: str, params: dict[str, str]) -> dict[str, Any]:
        return {"type": "function", "function": {
            "name": name, "description": description,
            "parameters": {"type": "object", "properties": {p: {"type": t} for p, t in params.items()},
                           "required": list(params)}}}

    return {
        "env_id": ENV_ID, "env_class_name": CLASS_NAME, "env_class_code": CODE,
        "environment_summary": "An online shop's customer-service database",
        "environment_introduction": "Customers, their orders and the product catalogue of an online shop.",
        "constraints_rules": ["Only pending orders can be cancelled."],
        "tools": [tool("get_customer", "Look up a customer by id.", {"customer_id": "string"}),
                  tool("get_order", "Look up an order by id.", {"order_id": "string"}),
                  tool("list_orders", "The ids of a customer's orders.", {"customer_id": "string"}),
                  tool("cancel_order", "Cancel a pending order and put its items back in stock.",
                       {"order_id": "string", "reason": "string"})],
    }


def database(target_bytes: int, seed: int = 7) -> dict[str, Any]:
    """Tables of about `target_bytes` of JSON: roughly 1 customer, 2 orders and 0.5 product per 630 bytes."""
    rng = random.Random(seed)
    customers_n = max(2, target_bytes // 630)
    products = {f"P{i:05d}": {"product_id": f"P{i:05d}", "name": f"Product {i} {rng.choice('ABCDEFGH')}",
                              "price": round(rng.uniform(1, 500), 2), "stock": rng.randint(0, 200),
                              "tags": rng.sample(["home", "garden", "toys", "books", "audio", "tools"], 2)}
                for i in range(max(2, customers_n // 2))}
    product_ids = list(products)
    customers: dict[str, Any] = {}
    orders: dict[str, Any] = {}
    for c in range(customers_n):
        cid = f"C{c:06d}"
        order_ids = []
        for _ in range(2):
            oid = f"O{len(orders):07d}"
            order_ids.append(oid)
            orders[oid] = {"order_id": oid, "customer_id": cid,
                           "status": rng.choice(["pending", "shipped", "delivered"]),
                           "created": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00",
                           "items": [{"product_id": rng.choice(product_ids), "quantity": rng.randint(1, 3)}
                                     for _ in range(rng.randint(1, 2))]}
        customers[cid] = {"customer_id": cid, "name": f"Customer {c}", "email": f"customer{c}@example.com",
                          "address": f"{rng.randint(1, 999)} Main Street, Springfield", "order_ids": order_ids}
    return {"customers": customers, "orders": orders, "products": products}


def scenarios(count: int, target_bytes: int) -> Iterator[dict[str, Any]]:
    """`count` scenarios over one database, each asking to cancel its own pending order."""
    db = database(target_bytes)
    pending = [oid for oid, o in db["orders"].items() if o["status"] == "pending"]
    for i in range(count):
        oid = pending[i % len(pending)]
        cid = db["orders"][oid]["customer_id"]
        check_cancel = (f"def check_func(final_state):\n    return final_state['orders']['{oid}']['status'] == "
                        "'cancelled'\n")
        check_stock = ("def check_func(final_state):\n"
                       f"    items = initial_state['orders']['{oid}']['items']\n"
                       "    return all(final_state['products'][i['product_id']]['stock'] >= "
                       "initial_state['products'][i['product_id']]['stock'] + i['quantity'] for i in items)\n")
        yield {"env_id": ENV_ID, "env_class_name": CLASS_NAME, "task_id": f"shop-{i:04d}", "init_config": db,
               "task": f"I am customer {cid}. Please cancel my order {oid}: I ordered it by mistake.",
               "checklist": ["The order is cancelled", "Its items are back in stock"],
               "checklist_with_func": [{"check_item": "The order is cancelled", "check_func": check_cancel},
                                       {"check_item": "Its items are back in stock", "check_func": check_stock}]}


def solution(scenario: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The calls that solve a scenario: what a replay sends."""
    oid = scenario["task"].split("order ")[1].split(":")[0]
    cid = scenario["task"].split("customer ")[1].split(".")[0]
    return [("get_customer", {"customer_id": cid}), ("list_orders", {"customer_id": cid}),
            ("get_order", {"order_id": oid}), ("cancel_order", {"order_id": oid, "reason": "ordered by mistake"}),
            ("cancel_order", {"order_id": oid, "reason": "again"})]


def write_corpus(folder: Path, count: int, target_bytes: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    envs, scenario_file = folder / "envs.json", folder / "scenarios.json"
    envs.write_text(json.dumps({ENV_ID: env_record()}))
    with scenario_file.open("w") as out:
        out.write("[")
        for i, scenario in enumerate(scenarios(count, target_bytes)):
            out.write(("," if i else "") + json.dumps(scenario))
        out.write("]")
    return envs, scenario_file


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.bigcorpus", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--scenarios", type=int, default=100)
    parser.add_argument("--state-mb", type=float, default=3.0)
    args = parser.parse_args()
    envs, scenario_file = write_corpus(args.out, args.scenarios, int(args.state_mb * (1 << 20)))
    print(f"{envs}, {scenario_file} ({scenario_file.stat().st_size >> 20} MiB)")


if __name__ == "__main__":
    main()
