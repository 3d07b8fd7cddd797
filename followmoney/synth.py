"""Synthetic world generator: a year of money-service transfers with planted patterns and their truth.

`generate_world` writes one calendar year (2025, UTC) of remittance traffic in Southeast-Asian corridors
(TH, KH, MM, VN, LA, MY, PH, US, AE) into a directory:

- ``transactions.arrow``: Arrow IPC file (zstd), the contract columns in `schema.TXN_COLUMNS` order;
- ``officials.csv``: officials in OpenSanctions ``targets.simple.csv`` layout;
- ``networks.csv``: known trafficking networks and their members;
- ``labels.parquet``: one row per planted pattern and per benign look-alike (`schema.LABEL_SCHEMA`);
- ``identities.parquet``: which customer is which list entry (and which are only namesakes);
- ``world.json``: parameters, counts, bad-row reasons and file hashes.

Every random draw comes from a numpy stream keyed by (seed, purpose[, block]), so a world depends only on
`rows` and `seed`: the transactions' content is the same for any `chunk_rows`, and with the same
`chunk_rows` every file is byte-identical. Background rows are generated in fixed blocks while the file
is written, so memory stays bounded however many rows are asked for.
"""

from __future__ import annotations

import csv
import hashlib
import json
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from followmoney import schema

_I64 = npt.NDArray[np.int64]
_I8 = npt.NDArray[np.int8]
_F64 = npt.NDArray[np.float64]
_B = npt.NDArray[np.bool_]

GENERATOR_VERSION: Final = "1.0"

TRANSACTIONS_FILE: Final = "transactions.arrow"
OFFICIALS_FILE: Final = "officials.csv"
NETWORKS_FILE: Final = "networks.csv"
LABELS_FILE: Final = "labels.parquet"
IDENTITIES_FILE: Final = "identities.parquet"
WORLD_FILE: Final = "world.json"

# Pattern kinds (labels.kind).
STRUCTURING: Final = "structuring"
RECURRING: Final = "recurring_payment_to_official"
NETWORK_FLOW: Final = "network_flow"
FAMILY: Final = "family_remittance"
RELATIVE: Final = "relative_to_official"
SHOP: Final = "shop_small_payments"
PAYROLL: Final = "payroll"
NEAR_THRESHOLD: Final = "near_threshold_single"
NAMESAKE: Final = "namesake"
CORRIDOR_BURST: Final = "corridor_burst"  # issue 5: the one planted pattern no rule covers (typology anomaly)
KINDS: Final = (
    STRUCTURING,
    RECURRING,
    NETWORK_FLOW,
    FAMILY,
    RELATIVE,
    SHOP,
    PAYROLL,
    NEAR_THRESHOLD,
    NAMESAKE,
    CORRIDOR_BURST,
)

# How a customer's transaction name differs from its list entry (identities.noise).
NOISES: Final = (
    "exact",
    "case_diacritics",
    "token_order",
    "transliteration",
    "typo",
    "dropped_middle",
    "phone_only",
)
PHONE_REQUIRED_NOISES: Final = frozenset({"transliteration", "typo", "dropped_middle", "phone_only"})
BAD_REASONS: Final = ("null_or_blank_id", "nonpositive_amount", "nan_amount", "ts_1970", "duplicate_txn_id")

THRESHOLDS_USD: Final = (3000.0, 10000.0)
CURRENCIES: Final = ("USD", "THB", "EUR", "MYR", "PHP")
USD_PER_UNIT: Final[Mapping[str, float]] = {"USD": 1.0, "THB": 0.029, "EUR": 1.08, "MYR": 0.22, "PHP": 0.0175}
OFFICIAL_HEADER: Final = schema.OFFICIAL_COLUMNS
NETWORK_HEADER: Final = schema.NETWORK_COLUMNS
IDENTITY_SCHEMA: Final = pa.schema(
    [
        ("customer_id", pa.string()),
        ("list_kind", pa.string()),
        ("list_id", pa.string()),
        ("network_id", pa.string()),
        ("noise", pa.string()),
        ("is_true_match", pa.bool_()),
    ]
)

# ---------------------------------------------------------------------------------------------------------
# Geography, money, time
# ---------------------------------------------------------------------------------------------------------
COUNTRIES: Final = ("TH", "KH", "MM", "VN", "LA", "MY", "PH", "US", "AE")
TH, KH, MM, VN, LA, MY, PH, US, AE = range(9)
_N_COUNTRIES: Final = len(COUNTRIES)
_HOST: Final = np.array([TH, MY, US, AE], dtype=np.int64)
_DEST: Final = np.array([KH, MM, VN, LA, PH], dtype=np.int64)
_UTC_OFFSET_S: Final = np.array([7, 7, 6.5, 7, 7, 8, 8, -6, 4]) * 3600.0
_NEIGHBOURS: Final[Mapping[int, tuple[int, ...]]] = {
    TH: (MM, KH, LA, MY),
    KH: (TH, VN, LA),
    MM: (TH,),
    VN: (KH, LA),
    LA: (TH, KH, VN),
    MY: (TH,),
    PH: (MY,),
}
_PLACES: Final[tuple[tuple[str, ...], ...]] = (
    ("Mae Sot", "Samut Sakhon", "Ranong", "Chiang Mai", "Bangkok", "Pattaya", "Songkhla", "Mahachai"),
    ("Poipet", "Phnom Penh", "Battambang", "Siem Reap", "Koh Kong", "Sihanoukville"),
    ("Myawaddy", "Yangon", "Mandalay", "Tachileik", "Kawthaung", "Mawlamyine"),
    ("Ho Chi Minh City", "Hanoi", "Can Tho", "Da Nang", "Hai Phong", "Vinh"),
    ("Vientiane", "Savannakhet", "Pakse", "Luang Prabang", "Thakhek"),
    ("Johor Bahru", "Klang", "Penang", "Kuala Lumpur", "Shah Alam", "Kota Kinabalu"),
    ("Cebu", "Davao", "Quezon City", "Manila", "Iloilo", "Zamboanga"),
    ("Los Angeles", "Houston", "San Jose", "Seattle", "Fresno", "Oakland"),
    ("Dubai", "Sharjah", "Abu Dhabi", "Ajman", "Al Ain"),
)

_RATE: Final = np.array([USD_PER_UNIT[c] for c in CURRENCIES])
_USD, _THB, _EUR, _MYR, _PHP = range(5)
_ROUND_UNIT: Final = np.array([10.0, 500.0, 10.0, 50.0, 500.0])
_ROUND_UNIT_RECURRING: Final = np.array([50.0, 500.0, 50.0, 50.0, 1000.0])
# Currency mix of a row by the sender's country of residence (USD, THB, EUR, MYR, PHP).
_CURRENCY_P: Final = np.array(
    [
        [0.60, 0.40, 0.00, 0.00, 0.00],
        [1.00, 0.00, 0.00, 0.00, 0.00],
        [1.00, 0.00, 0.00, 0.00, 0.00],
        [1.00, 0.00, 0.00, 0.00, 0.00],
        [0.90, 0.10, 0.00, 0.00, 0.00],
        [0.60, 0.00, 0.00, 0.40, 0.00],
        [0.60, 0.00, 0.00, 0.00, 0.40],
        [1.00, 0.00, 0.00, 0.00, 0.00],
        [0.85, 0.00, 0.15, 0.00, 0.00],
    ]
)
_LOCAL_CURRENCY: Final = np.array([_THB, _USD, _USD, _USD, _THB, _MYR, _PHP, _USD, _USD])

_YEAR_START_S: Final = int(np.datetime64("2025-01-01T00:00:00", "s").astype(np.int64))
_DAY_S: Final = 86_400
_YEAR_S: Final = 365 * _DAY_S
_MONTHS: Final = np.arange("2025-01", "2026-01", dtype="datetime64[M]").astype("datetime64[D]")
_MONTH_START_DAY: Final = (_MONTHS - np.datetime64("2025-01-01", "D")).astype(np.int64)

# Phones: (country code, trunk prefix, mobile prefixes of equal length, national number length).
_PHONE_PLAN: Final[tuple[tuple[str, str, tuple[str, ...], int], ...]] = (
    ("66", "0", ("81", "84", "86", "89", "91", "92", "95", "98", "61", "63", "64", "65"), 9),
    ("855", "0", ("97", "88", "71", "31"), 9),
    ("95", "0", ("975", "976", "977", "978", "979", "996", "997", "998", "925", "926"), 10),
    ("84", "0", ("91", "90", "98", "97", "86", "70", "77", "35"), 9),
    ("856", "0", ("205", "207", "209", "202"), 10),
    ("60", "0", ("12", "16", "19"), 9),
    ("63", "0", ("917", "918", "927", "945", "995"), 10),
    ("1", "", ("2132", "4152", "7142", "2062", "4082", "6172"), 10),
    ("971", "0", ("50", "52", "54", "55", "56", "58"), 9),
)
# Row phone formats: 0 "081-234-5678", 1 "+66 81 234 5678", 2 "66812345678", 3 "0812345678", 4 "+66812345678".
_PHONE_FORMAT_P: Final = np.array([0.30, 0.25, 0.15, 0.22, 0.08])
_PHONE_NULL_P: Final = 0.10
_PHONE_OWNED_P: Final = 0.85

# ---------------------------------------------------------------------------------------------------------
# People: cultures (name origin) and who lives where
# ---------------------------------------------------------------------------------------------------------
E_THAI, E_KHMER, E_BURMESE, E_VIET, E_LAO, E_MALAY, E_FILIPINO, E_ARAB = range(8)
_N_CULTURES: Final = 8
_CULTURE_HOME: Final = np.array([TH, KH, MM, VN, LA, MY, PH, AE], dtype=np.int64)
_COUNTRY_CULTURE: Final[Mapping[int, int]] = {
    TH: E_THAI,
    KH: E_KHMER,
    MM: E_BURMESE,
    VN: E_VIET,
    LA: E_LAO,
    MY: E_MALAY,
    PH: E_FILIPINO,
    AE: E_ARAB,
}


def _culture_table(rows: Mapping[int, Mapping[int, float]]) -> npt.NDArray[np.float64]:
    """A (country x culture) probability table from sparse rows; countries without a row stay zero."""
    table = np.zeros((_N_COUNTRIES, _N_CULTURES))
    for country, weights in rows.items():
        for culture, weight in weights.items():
            table[country, culture] = weight
        table[country] /= table[country].sum()
    return table


# Migrant workers in each host country, by origin.
_MIGRANT_CULTURE_P: Final = _culture_table(
    {
        TH: {E_BURMESE: 0.50, E_KHMER: 0.30, E_LAO: 0.15, E_VIET: 0.05},
        MY: {E_BURMESE: 0.35, E_VIET: 0.20, E_FILIPINO: 0.20, E_KHMER: 0.10, E_THAI: 0.15},
        US: {E_VIET: 0.45, E_FILIPINO: 0.35, E_THAI: 0.10, E_LAO: 0.05, E_KHMER: 0.05},
        AE: {E_FILIPINO: 0.65, E_BURMESE: 0.10, E_THAI: 0.10, E_VIET: 0.10, E_ARAB: 0.05},
    }
)
# Everyone living in a country.
_RESIDENT_CULTURE_P: Final = _culture_table(
    {
        TH: {E_THAI: 0.60, E_BURMESE: 0.20, E_KHMER: 0.12, E_LAO: 0.06, E_VIET: 0.02},
        KH: {E_KHMER: 0.95, E_VIET: 0.05},
        MM: {E_BURMESE: 1.0},
        VN: {E_VIET: 1.0},
        LA: {E_LAO: 1.0},
        MY: {E_MALAY: 0.60, E_BURMESE: 0.14, E_VIET: 0.08, E_FILIPINO: 0.08, E_KHMER: 0.04, E_THAI: 0.06},
        PH: {E_FILIPINO: 1.0},
        US: {E_VIET: 0.45, E_FILIPINO: 0.35, E_THAI: 0.10, E_LAO: 0.05, E_KHMER: 0.05},
        AE: {E_ARAB: 0.30, E_FILIPINO: 0.45, E_BURMESE: 0.08, E_THAI: 0.08, E_VIET: 0.09},
    }
)
# Migrant workers who send home to the five destination countries (family remittances).
_FAMILY_CULTURE_P: Final = _culture_table(
    {
        c: {e: w for e, w in enumerate(_MIGRANT_CULTURE_P[c]) if _CULTURE_HOME[e] in (KH, MM, VN, LA, PH)}
        for c in (TH, MY, US, AE)
    }
)
_MIGRANT_HOST_P: Final = np.array([0.42, 0.18, 0.24, 0.16])  # over _HOST
_RECEIVER_COUNTRY_P: Final = np.array([0.12, 0.16, 0.22, 0.14, 0.08, 0.07, 0.16, 0.0, 0.05])
_HAS_RECEIVERS: Final = _RECEIVER_COUNTRY_P > 0
_AGENT_SHARE: Final = np.array([0.34, 0.05, 0.05, 0.06, 0.02, 0.16, 0.06, 0.16, 0.10])
_OFFICIAL_COUNTRY_P: Final = np.array([0.36, 0.11, 0.15, 0.12, 0.06, 0.11, 0.09, 0.0, 0.0])
_NETWORK_BASE_P: Final = np.array([0.55, 0.10, 0.10, 0.0, 0.05, 0.20, 0.0, 0.0, 0.0])
ROLES: Final = ("recruiter", "broker", "brothel owner", "driver", "document forger", "money handler")
_PAYER_ROLES: Final = ("brothel owner", "money handler", "broker")

# ---------------------------------------------------------------------------------------------------------
# Name parts: (romanised, native script or Vietnamese with diacritics, alternative romanisation)
# ---------------------------------------------------------------------------------------------------------
_Part = tuple[str, str, str]

_THAI_GIVEN: Final[tuple[_Part, ...]] = (
    ("Somchai", "สมชาย", "Somchay"), ("Somsak", "สมศักดิ์", "Somsack"), ("Somporn", "สมพร", "Sompon"),
    ("Somying", "สมหญิง", ""), ("Prasert", "ประเสริฐ", "Prasoet"), ("Wichai", "วิชัย", "Vichai"),
    ("Suchart", "สุชาติ", "Suchat"), ("Sombat", "สมบัติ", "Sombut"), ("Malee", "มาลี", "Mali"),
    ("Napha", "นภา", "Napa"), ("Kanokwan", "กนกวรรณ", "Kanokwun"), ("Siriporn", "ศิริพร", "Siripon"),
    ("Nattapong", "ณัฐพงศ์", "Nattaphong"), ("Anan", "อนันต์", "Anant"), ("Chaiwat", "ชัยวัฒน์", "Chaiwath"),
    ("Boonmee", "บุญมี", "Bunmi"), ("Thongchai", "ธงชัย", "Tongchai"), ("Preecha", "ปรีชา", "Pricha"),
    ("Sunee", "สุนีย์", "Suni"), ("Pranee", "ปราณี", "Prani"), ("Kittisak", "กิตติศักดิ์", "Kittisack"),
    ("Wanchai", "วันชัย", "Vanchai"), ("Surachai", "สุรชัย", "Surachay"), ("Narong", "ณรงค์", ""),
    ("Apichart", "อภิชาติ", "Aphichat"), ("Jintana", "จินตนา", "Chintana"), ("Rattana", "รัตนา", "Ratana"),
    ("Somkiat", "สมเกียรติ", "Somkiet"), ("Chalerm", "เฉลิม", "Chaloem"), ("Udom", "อุดม", "Udorm"),
    ("Pornthip", "พรทิพย์", "Phonthip"), ("Wirat", "วิรัช", "Virat"), ("Arunee", "อรุณี", "Aruni"),
    ("Yupin", "ยุพิน", "Yuphin"), ("Manop", "มานพ", "Manob"), ("Surasak", "สุรศักดิ์", "Surasack"),
    ("Phichit", "พิชิต", "Pichit"), ("Niphon", "นิพนธ์", "Nipon"), ("Thawatchai", "ธวัชชัย", "Tawatchai"),
    ("Wattana", "วัฒนา", "Watana"), ("Chatri", "ชาตรี", "Chatree"), ("Kasem", "เกษม", "Kasame"),
    ("Thongbai", "ทองใบ", "Tongbai"),
)  # fmt: skip
_THAI_SURNAME_HEAD: Final[tuple[_Part, ...]] = (
    ("Sri", "ศรี", "Si"), ("Wong", "วงศ์", "Vong"), ("Chai", "ชัย", "Chay"), ("Boon", "บุญ", "Bun"),
    ("Kaew", "แก้ว", "Keo"), ("Thong", "ทอง", "Tong"), ("Saeng", "แสง", "Sang"), ("Suk", "สุข", "Sook"),
    ("Rung", "รุ่ง", "Roong"), ("Phet", "เพชร", "Pet"), ("Jan", "จันทร์", "Chan"), ("Ngern", "เงิน", "Ngoen"),
)  # fmt: skip
_THAI_SURNAME_TAIL: Final[tuple[_Part, ...]] = (
    ("suk", "สุข", "sook"), ("sawat", "สวัสดิ์", "sawad"), ("wong", "วงศ์", "vong"), ("chai", "ชัย", "chay"),
    ("dee", "ดี", "di"), ("ma", "มา", "maa"), ("thong", "ทอง", "tong"), ("sri", "ศรี", "si"),
    ("charoen", "เจริญ", "jaroen"), ("ngam", "งาม", "ngarm"), ("porn", "พร", "phon"),
    ("sombat", "สมบัติ", "sombut"), ("prasert", "ประเสริฐ", "prasoet"), ("rak", "รักษ์", "raks"),
    ("phan", "พันธ์", "pan"), ("kul", "กุล", "kun"), ("saeng", "แสง", "sang"), ("rat", "รัตน์", "rath"),
)  # fmt: skip
_THAI_MIDS: Final = frozenset({"suk", "thong", "wong", "sri", "porn"})
_THAI_SURNAME_MID: Final = tuple(p for p in _THAI_SURNAME_TAIL if p[0] in _THAI_MIDS)
_THAI_SURNAME_WHOLE: Final[tuple[_Part, ...]] = (
    ("Saetang", "แซ่ตั้ง", "Sae-Tang"), ("Saelim", "แซ่ลิ้ม", "Sae-Lim"), ("Jaidee", "ใจดี", "Chaidee"),
)  # fmt: skip
_THAI_NICKNAMES: Final = (
    "Nok",
    "Lek",
    "Noi",
    "Daeng",
    "Som",
    "Boy",
    "Joy",
    "Tik",
    "Nid",
    "Pom",
    "Oy",
    "Golf",
)

_KHMER_SURNAME: Final[tuple[_Part, ...]] = (
    ("Sok", "សុខ", "Sokh"), ("Chan", "ចាន់", "Chann"), ("Kim", "គឹម", "Keam"), ("Heng", "ហេង", "Hieng"),
    ("Ly", "លី", "Lee"), ("Meas", "មាស", "Mas"), ("Chea", "ជា", "Chia"), ("Keo", "កែវ", "Kaev"),
    ("Hun", "ហ៊ុន", "Hoon"), ("Prak", "ប្រាក់", "Brak"), ("Nuon", "នួន", "Nuan"), ("Seng", "សេង", "Sieng"),
    ("Pich", "ពេជ្រ", "Pech"), ("Mao", "ម៉ៅ", "Mau"), ("Oum", "អ៊ុំ", "Um"), ("Vann", "វ៉ាន់", "Van"),
    ("Lim", "លឹម", "Leam"), ("Tep", "ទេព", "Teb"), ("Long", "ឡុង", "Loung"), ("Say", "សាយ", "Sai"),
)  # fmt: skip
_KHMER_GIVEN: Final[tuple[_Part, ...]] = (
    ("Dara", "ដារ៉ា", "Darra"), ("Sophea", "សុភា", "Sophia"), ("Vichet", "វិចិត្រ", "Vicheth"),
    ("Sreymom", "ស្រីមុំ", "Srey Mom"), ("Piseth", "ពិសិដ្ឋ", "Pisith"), ("Sokha", "សុខា", "Sokhar"),
    ("Bopha", "បុប្ផា", "Bopa"), ("Chantha", "ចន្ថា", "Chanta"), ("Rithy", "ឫទ្ធី", "Rithi"),
    ("Sovann", "សុវណ្ណ", "Sovan"), ("Channary", "ចន្នារី", "Chanary"), ("Vuthy", "វុទ្ធី", "Vuthi"),
    ("Kosal", "កុសល", "Kosol"), ("Sothea", "សុធា", "Sotea"), ("Rachana", "រចនា", "Rachna"),
    ("Sopheap", "សុភាព", "Sopheab"), ("Samnang", "សំណាង", "Samnag"), ("Phalla", "ផល្លា", "Phala"),
    ("Leakhena", "លក្ខិណា", "Leakena"), ("Nary", "ណារី", "Nari"), ("Veasna", "វាសនា", "Veasana"),
    ("Borey", "បូរី", "Bori"), ("Sopheak", "សុភ័ក្ត្រ", "Sophak"), ("Thida", "ធីតា", "Theda"),
    ("Sambath", "សម្បត្តិ", "Sambat"), ("Makara", "មករា", "Makra"), ("Visal", "វិសាល", "Vishal"),
    ("Kolab", "កុលាប", "Kulap"), ("Rotha", "រដ្ឋា", "Ratha"), ("Seyha", "សីហា", "Seiha"),
    ("Chenda", "ចិន្ដា", "Chinda"), ("Vanna", "វណ្ណា", "Vana"), ("Pheaktra", "ភក្ត្រា", "Peaktra"),
)  # fmt: skip
_BURMESE_SYLLABLE: Final[tuple[_Part, ...]] = (
    ("Aung", "အောင်", ""), ("Kyaw", "ကျော်", "Kyo"), ("Moe", "မိုး", "Mo"), ("Win", "ဝင်း", "Winn"),
    ("Than", "သန်း", "Thann"), ("Tun", "ထွန်း", "Htun"), ("Soe", "စိုး", "Soh"), ("Myint", "မြင့်", "Myin"),
    ("Zaw", "ဇော်", "Zau"), ("Naing", "နိုင်", "Nai"), ("Hla", "လှ", "Hlah"), ("Min", "မင်း", "Minn"),
    ("Thein", "သိန်း", "Thien"), ("Htet", "ထက်", "Htat"), ("Ko", "ကို", "Koh"), ("Nyein", "ငြိမ်း", "Nyien"),
    ("Khin", "ခင်", "Khinn"), ("Mya", "မြ", "Myah"), ("Nwe", "နွယ်", "Nway"), ("Thida", "သီတာ", "Thidar"),
    ("Su", "စု", "Suu"), ("San", "စန်း", "Sann"), ("Yin", "ယဉ်", "Yinn"), ("Phyo", "ဖြိုး", "Phyoe"),
    ("Thet", "သက်", "Thett"), ("Wai", "ဝေ", "Way"), ("Lwin", "လွင်", "Lwinn"), ("Hnin", "နှင်း", "Nhin"),
    ("Ye", "ရဲ", "Yae"), ("Lin", "လင်း", "Linn"), ("Zin", "ဇင်", "Zinn"), ("Maung", "မောင်", "Mg"),
    ("Myo", "မျိုး", "Myoe"), ("Thura", "သူရ", "Thuya"), ("Kyi", "ကြည်", "Kyee"),
)  # fmt: skip
_VIET_FAMILY: Final[tuple[_Part, ...]] = (
    ("Nguyen", "Nguyễn", ""), ("Tran", "Trần", ""), ("Le", "Lê", "Lee"), ("Pham", "Phạm", "Fam"),
    ("Hoang", "Hoàng", "Huang"), ("Huynh", "Huỳnh", "Huinh"), ("Phan", "Phan", "Fan"), ("Vu", "Vũ", ""),
    ("Vo", "Võ", ""), ("Dang", "Đặng", "Dhang"), ("Bui", "Bùi", ""), ("Do", "Đỗ", ""), ("Ho", "Hồ", ""),
    ("Ngo", "Ngô", ""), ("Duong", "Dương", "Zuong"), ("Ly", "Lý", "Lee"),
)  # fmt: skip
_VIET_MIDDLE: Final[tuple[_Part, ...]] = (
    ("Van", "Văn", ""), ("Thi", "Thị", "Thy"), ("Duc", "Đức", "Duk"), ("Minh", "Minh", ""),
    ("Ngoc", "Ngọc", "Ngok"), ("Thanh", "Thanh", ""), ("Huu", "Hữu", ""), ("Quang", "Quang", "Kwang"),
    ("Xuan", "Xuân", "Suan"), ("Hong", "Hồng", ""), ("Kim", "Kim", ""),
)  # fmt: skip
_VIET_GIVEN: Final[tuple[_Part, ...]] = (
    ("Nam", "Nam", ""), ("Lan", "Lan", ""), ("Hung", "Hùng", ""), ("Tuan", "Tuấn", ""),
    ("Huong", "Hương", ""), ("Linh", "Linh", ""), ("Dung", "Dung", "Zung"), ("Hai", "Hải", ""),
    ("Long", "Long", ""), ("Trang", "Trang", "Chang"), ("Phuong", "Phương", "Fuong"), ("Hoa", "Hoa", ""),
    ("Thao", "Thảo", ""), ("Binh", "Bình", ""), ("Cuong", "Cường", "Kuong"), ("Dat", "Đạt", ""),
    ("Hieu", "Hiếu", ""), ("Khanh", "Khánh", "Kanh"), ("Mai", "Mai", ""), ("Nga", "Nga", ""),
    ("Quan", "Quân", "Kwan"), ("Son", "Sơn", ""), ("Thang", "Thắng", ""), ("Thuy", "Thủy", ""),
    ("Tien", "Tiến", ""), ("Trung", "Trung", "Chung"), ("Vinh", "Vinh", ""), ("Yen", "Yến", ""),
    ("Ha", "Hà", ""), ("Hanh", "Hạnh", ""), ("Loan", "Loan", ""), ("Thu", "Thu", ""),
)  # fmt: skip
_LAO_GIVEN_HEAD: Final[tuple[_Part, ...]] = (
    ("Boun", "", "Bun"), ("Kham", "", "Kam"), ("Som", "", "Sorm"), ("Souk", "", "Suk"), ("Phone", "", "Phon"),
    ("Vilay", "", "Vilai"), ("Chan", "", "Jan"), ("Thong", "", "Tong"), ("Sy", "", "Si"), ("Keo", "", "Kaeo"),
    ("Noy", "", "Noi"), ("Khoun", "", "Kun"),
)  # fmt: skip
_LAO_GIVEN_TAIL: Final[tuple[_Part, ...]] = (
    ("my", "", "mi"), ("la", "", "lah"), ("phanh", "", "phan"), ("savanh", "", "savan"),
    ("thavy", "", "thavi"), ("sack", "", "sak"), ("vanh", "", "van"), ("dam", "", ""),
    ("sone", "", "son"), ("mala", "", ""), ("ny", "", "ni"), ("kham", "", "kam"),
)  # fmt: skip
_LAO_SURNAME_HEAD: Final[tuple[_Part, ...]] = (
    ("Phomma", "", "Phoma"), ("Souvanna", "", "Suvanna"), ("Inthi", "", "Inthy"), ("Chantha", "", "Jantha"),
    ("Keo", "", "Kaeo"), ("Phan", "", "Pan"), ("Xaya", "", "Saya"), ("Thamma", "", "Tamma"),
    ("Vilay", "", "Vilai"), ("Sisa", "", "Sysa"), ("Luang", "", "Luong"), ("Douang", "", "Duang"),
    ("Sy", "", "Si"), ("Bouapha", "", "Buapha"),
)  # fmt: skip
_LAO_SURNAME_TAIL: Final[tuple[_Part, ...]] = (
    ("vong", "", "wong"), ("chanh", "", "chan"), ("vath", "", "vat"), ("sone", "", "son"),
    ("many", "", "mani"), ("rath", "", "rat"), ("sith", "", "sit"), ("sack", "", "sak"),
    ("phanh", "", "phan"), ("dara", "", "dala"), ("khoune", "", "khoun"), ("phone", "", "phon"),
)  # fmt: skip
_LAO_NICKNAMES: Final = ("Noy", "Keo", "Phet", "Toui", "Nang", "Bee", "Ki", "Ton")
_FILIPINO_GIVEN: Final[tuple[_Part, ...]] = (
    ("Maria", "", "Ma."), ("Jose", "", ""), ("Juan", "", ""), ("Mark", "", "Marc"), ("John", "", "Jon"),
    ("Michael", "", "Micheal"), ("Jennifer", "", "Jenifer"), ("Rosario", "", ""), ("Ana", "", "Anna"),
    ("Roberto", "", ""), ("Cristina", "", "Kristina"), ("Joel", "", ""), ("Ricardo", "", ""),
    ("Marites", "", "Maritess"), ("Jocelyn", "", "Joselyn"), ("Rodel", "", ""), ("Arnel", "", "Arnell"),
    ("Lorna", "", ""), ("Edwin", "", ""), ("Maricel", "", "Maricell"), ("Ronaldo", "", ""),
    ("Angelica", "", "Anjelica"), ("Rey", "", "Ray"), ("Jonathan", "", "Jonathon"), ("Rowena", "", "Rowina"),
    ("Gerardo", "", ""), ("Divina", "", ""), ("Liza", "", "Lisa"), ("Noel", "", ""),
)  # fmt: skip
_FILIPINO_SURNAME: Final[tuple[_Part, ...]] = (
    ("Santos", "", ""), ("Reyes", "", ""), ("Cruz", "", ""), ("Bautista", "", "Batista"), ("Ocampo", "", ""),
    ("Garcia", "", ""), ("Mendoza", "", ""), ("Torres", "", ""), ("Tomas", "", ""), ("Andrada", "", ""),
    ("Castillo", "", ""), ("Flores", "", ""), ("Villanueva", "", "Villa Nueva"), ("Ramos", "", ""),
    ("Castro", "", ""), ("Rivera", "", ""), ("Aquino", "", ""), ("Navarro", "", ""), ("Salazar", "", ""),
    ("Mercado", "", ""), ("Dela Cruz", "", "Delacruz"), ("De Guzman", "", "Deguzman"),
    ("Gonzales", "", "Gonzalez"), ("Fernandez", "", "Fernandes"), ("Lopez", "", "Lopes"), ("Pascual", "", ""),
)  # fmt: skip
_MALAY_MALE: Final[tuple[_Part, ...]] = (
    ("Ahmad", "", "Ahmed"), ("Mohd", "", "Mohamad"), ("Muhammad", "", "Mohammad"), ("Faizal", "", "Faisal"),
    ("Hafiz", "", "Hafeez"), ("Azman", "", ""), ("Rosli", "", ""), ("Zainal", "", "Zainol"),
    ("Hassan", "", "Hasan"), ("Ismail", "", "Esmail"), ("Ibrahim", "", "Ebrahim"), ("Aziz", "", "Azeez"),
    ("Kamal", "", ""), ("Razak", "", "Razaq"), ("Hamzah", "", "Hamza"), ("Amir", "", "Ameer"),
    ("Hakim", "", "Hakeem"), ("Firdaus", "", "Firdhaus"), ("Syafiq", "", "Shafiq"),
    ("Iskandar", "", "Eskandar"), ("Yusof", "", "Yusuf"), ("Osman", "", "Othman"), ("Salleh", "", "Saleh"),
)  # fmt: skip
_MALAY_FEMALE: Final[tuple[_Part, ...]] = (
    ("Siti", "", ""), ("Nur", "", "Noor"), ("Aisyah", "", "Aishah"), ("Noraini", "", "Nor Aini"),
    ("Farah", "", ""), ("Salmah", "", "Salma"), ("Zarina", "", "Zareena"), ("Nurul", "", "Noorul"),
    ("Fatimah", "", "Fatima"), ("Aminah", "", "Amina"), ("Rohana", "", "Ruhana"), ("Suraya", "", "Soraya"),
    ("Halimah", "", "Halima"), ("Norhayati", "", "Nor Hayati"), ("Azizah", "", "Aziza"),
)  # fmt: skip
_ARAB_GIVEN: Final[tuple[_Part, ...]] = (
    ("Mohammed", "", "Muhammad"), ("Ahmed", "", "Ahmad"), ("Khalid", "", "Khaled"), ("Saeed", "", "Said"),
    ("Abdullah", "", "Abdallah"), ("Rashid", "", "Rasheed"), ("Hamdan", "", ""), ("Sultan", "", ""),
    ("Omar", "", "Umar"), ("Yousef", "", "Yusuf"), ("Hamad", "", ""), ("Salem", "", "Salim"), ("Ali", "", ""),
    ("Hassan", "", "Hasan"), ("Majid", "", "Majed"), ("Faisal", "", "Faysal"), ("Fatima", "", "Fatma"),
    ("Mariam", "", "Maryam"), ("Aisha", "", "Aysha"), ("Noura", "", "Nora"), ("Hessa", "", "Hissa"),
)  # fmt: skip
_ARAB_FAMILY: Final[tuple[_Part, ...]] = (
    ("Al Mansouri", "", "Al-Mansoori"), ("Al Nuaimi", "", "Al Noaimi"), ("Al Shamsi", "", "Al-Shamsi"),
    ("Al Ketbi", "", "Al Kitbi"), ("Al Dhaheri", "", "Al Daheri"), ("Al Mazrouei", "", "Al Mazrui"),
    ("Al Falasi", "", "Al Falasy"), ("Al Suwaidi", "", "Al Suwaidy"), ("Al Hashimi", "", "Al Hashemi"),
    ("Al Zaabi", "", "Al Zabi"), ("Al Marri", "", "Al Mari"), ("Al Qubaisi", "", "Al Kubaisi"),
    ("Al Ameri", "", "Al Amiri"), ("Al Kaabi", "", "Al Kabi"),
)  # fmt: skip
_TRANSLIT_RULES: Final = (("ph", "p"), ("th", "t"), ("kh", "k"), ("oo", "u"), ("ee", "i"), ("ou", "u"),
                          ("w", "v"), ("ch", "j"), ("y", "i"))  # fmt: skip
_KEYBOARD: Final = "qwertyuiop asdfghjkl zxcvbnm"
_SHOP_WORDS: Final = ("Mini Mart", "Phone Shop", "Grocery", "General Store", "Mobile Top-up", "Noodle Shop",
                      "Pharmacy", "Beauty Salon")  # fmt: skip
_BUSINESS_ADJ: Final = ("Golden", "Lucky", "New", "Star", "Royal", "Green", "Prosperity", "Sunrise", "Silver")
_EMPLOYER_WORDS: Final[Mapping[int, tuple[str, ...]]] = {
    TH: ("Seafood Co., Ltd.", "Garment Co., Ltd.", "Construction Co., Ltd.", "Fishing Co., Ltd."),
    MY: ("Plantation Sdn Bhd", "Construction Sdn Bhd", "Manufacturing Sdn Bhd", "Glove Sdn Bhd"),
    AE: ("Building Contracting LLC", "Cleaning Services LLC", "General Trading LLC", "Facilities LLC"),
}
_SUPPLIER_WORDS: Final = ("Trading Co.", "Import Export", "Wholesale", "Electronics Trading", "Auto Parts")
_OFFICIAL_DATASETS: Final[Mapping[int, tuple[str, ...]]] = {
    TH: ("th_officials", "th_police_officers", "wd_peps"),
    KH: ("kh_officials", "wd_peps"),
    MM: ("mm_military", "mm_officials", "wd_peps"),
    VN: ("vn_officials", "wd_peps"),
    LA: ("la_officials", "wd_peps"),
    MY: ("my_officials", "wd_peps"),
    PH: ("ph_officials", "wd_peps"),
}
_EMAIL_DOMAINS: Final[Mapping[int, str]] = {
    TH: "police.go.th", KH: "interior.gov.kh", MM: "mod.gov.mm", VN: "mps.gov.vn", LA: "mps.gov.la",
    MY: "rmp.gov.my", PH: "pnp.gov.ph",
}  # fmt: skip
_MM_SANCTIONS: Final = (
    "Myanmar/Burma - EU Council Regulation (EU) No 401/2013",
    "US OFAC SDN - BURMA-EO14014",
)
# Countries where a namesake of an official from the key country plausibly lives.
_NAMESAKE_HOMES: Final[Mapping[int, tuple[int, ...]]] = {
    TH: (US, LA, MY), KH: (TH, VN), MM: (TH, MY), VN: (US, KH), LA: (TH, US), MY: (AE, TH), PH: (US, AE, MY),
}  # fmt: skip
_FAMILY_NAMESAKE_HOMES: Final[Mapping[int, tuple[int, ...]]] = {
    TH: (LA, KH),
    VN: (KH, LA),
    KH: (VN,),
    LA: (KH,),
}

# Expected rows per pattern (incl. the parties' ordinary transfers), to shrink tiny worlds.
_EXPECTED_ROWS: Final[Mapping[str, float]] = {
    STRUCTURING: 7.5, RECURRING: 17.0, NETWORK_FLOW: 4.0, FAMILY: 10.0, RELATIVE: 9.0, SHOP: 115.0,
    PAYROLL: 285.0, NEAR_THRESHOLD: 6.5, NAMESAKE: 6.5, CORRIDOR_BURST: 8.5,
}  # fmt: skip
_BG_BLOCK: Final = 1 << 16
_MAX_ORDINARY_USD: Final = 2000.0  # parties' ordinary transfers stay below every near-threshold band

# Stream keys of the random generators (one purpose each).
_S_POPULATION, _S_NAMES, _S_OFFICIALS, _S_NETWORKS, _S_PLAN, _S_IDENTITY, _S_PHONES = 1, 2, 3, 4, 5, 6, 7
_S_KIND0, _S_EXTRAS, _S_BAD, _S_LAYOUT, _S_BACKGROUND = 10, 30, 31, 32, 100


def _rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of one purpose: the same (seed, key) always yields the same numbers."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


# ---------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorldSummary:
    """What `generate_world` wrote: row count, patterns per kind, bad rows per reason and file paths."""

    rows: int
    seed: int
    out_dir: Path
    pattern_counts: Mapping[str, int]
    bad_row_counts: Mapping[str, int]
    paths: Mapping[str, Path]


def generate_world(
    rows: int,
    seed: int,
    out_dir: Path,
    *,
    chunk_rows: int = 1_000_000,
    bad_fraction: float = 0.0005,
    progress: Callable[[int], None] | None = None,
) -> WorldSummary:
    """Write a synthetic world of exactly `rows` transfers (plus lists and ground truth) into `out_dir`.

    `chunk_rows` bounds the rows held in memory while writing; `progress(n)` is called after each chunk
    with the number of rows just written. Raises ValueError for impossible arguments.
    """
    _check_arguments(rows, seed, chunk_rows, bad_fraction)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = _build_world(rows, seed, bad_fraction)
    paths = {
        "transactions": out / TRANSACTIONS_FILE,
        "officials": out / OFFICIALS_FILE,
        "networks": out / NETWORKS_FILE,
        "labels": out / LABELS_FILE,
        "identities": out / IDENTITIES_FILE,
        "world": out / WORLD_FILE,
    }
    _write_transactions(paths["transactions"], world, chunk_rows, progress)
    _write_csv(paths["officials"], OFFICIAL_HEADER, world.officials_rows)
    _write_csv(paths["networks"], NETWORK_HEADER, world.network_rows)
    pq.write_table(world.labels, paths["labels"], compression="zstd")
    pq.write_table(world.identities, paths["identities"], compression="zstd")
    _write_world_json(paths, world)
    return WorldSummary(
        rows=rows,
        seed=seed,
        out_dir=out,
        pattern_counts=dict(world.pattern_counts),
        bad_row_counts=dict(world.bad_counts),
        paths=paths,
    )


def pattern_counts_for(rows: int) -> dict[str, int]:
    """The number of patterns of each kind a world of `rows` rows asks for (before shrinking tiny worlds)."""
    return {
        STRUCTURING: max(20, rows // 10_000),
        RECURRING: max(20, rows // 20_000),
        NETWORK_FLOW: network_count_for(rows),
        FAMILY: max(100, rows // 2_000),
        RELATIVE: max(20, rows // 20_000),
        SHOP: max(20, rows // 20_000),
        PAYROLL: max(10, rows // 50_000),
        NEAR_THRESHOLD: max(50, rows // 5_000),
        NAMESAKE: max(20, rows // 20_000),
        CORRIDOR_BURST: max(10, rows // 50_000),
    }


def network_count_for(rows: int) -> int:
    """The number of known networks in networks.csv for a world of `rows` rows."""
    return max(10, rows // 50_000)


def official_count_for(rows: int) -> int:
    """The number of officials in officials.csv for a world of `rows` rows (most never transact)."""
    return max(200, rows // 500)


def _check_arguments(rows: int, seed: int, chunk_rows: int, bad_fraction: float) -> None:
    """Reject arguments no world can be made from."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if not 0.0 <= bad_fraction <= 0.5:
        raise ValueError(f"bad_fraction must be between 0 and 0.5, got {bad_fraction}")


# ---------------------------------------------------------------------------------------------------------
# Small vectorised helpers
# ---------------------------------------------------------------------------------------------------------
def _ragged(counts: npt.ArrayLike) -> tuple[_I64, _I64]:
    """For groups of the given sizes: each member's group index and its position within the group."""
    c = np.asarray(counts, dtype=np.int64)
    group = np.repeat(np.arange(c.size, dtype=np.int64), c)
    starts = np.cumsum(c) - c
    return group, np.arange(group.size, dtype=np.int64) - starts[group]


def _group_starts(counts: _I64) -> _I64:
    """Index of the first member of each group laid out back to back."""
    return np.cumsum(counts) - counts


def _sorted_distinct(rng: np.random.Generator, n: int, high: int) -> _I64:
    """`n` distinct sorted integers from [0, high), without materialising the range."""
    if n > high:
        raise ValueError(f"cannot draw {n} distinct values below {high}")
    return np.sort(rng.integers(0, high - n + 1, size=n)) + np.arange(n, dtype=np.int64)


def _pick_in_groups(
    rng: np.random.Generator,
    members: _I64,
    offsets: _I64,
    group: _I64,
    skew: float = 1.0,
) -> _I64:
    """One member of each requested group (skewed toward a group's first members); any member if empty."""
    size = offsets[group + 1] - offsets[group]
    u = rng.random(group.size) ** skew
    empty = size == 0
    pos = np.where(empty, (u * members.size).astype(np.int64), offsets[group] + (u * size).astype(np.int64))
    return members[np.minimum(pos, members.size - 1)]


def _grouped(values: _I64, keys: _I64, n_keys: int) -> tuple[_I64, _I64]:
    """`values` ordered by key (stable) and the key offsets into that order."""
    order = np.argsort(keys, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_keys))]).astype(np.int64)
    return values[order], offsets


def _draw_per_country(rng: np.random.Generator, country: _I64, table: npt.NDArray[np.float64]) -> _I64:
    """For each row, a category drawn from the probability row of its country."""
    out = np.zeros(country.size, dtype=np.int64)
    for c in range(_N_COUNTRIES):
        mask = country == c
        k = int(mask.sum())
        if k and table[c].sum() > 0:
            out[mask] = rng.choice(table.shape[1], size=k, p=table[c])
    return out


def _daytime_ts(rng: np.random.Generator, day: npt.ArrayLike, country: _I64) -> _I64:
    """Seconds since 2025-01-01 UTC of transfers on the given local days, mostly in opening hours."""
    d = np.asarray(day, dtype=np.float64)
    n = d.size
    hour = np.where(rng.random(n) < 0.85, rng.uniform(8.0, 20.0, n), rng.uniform(0.0, 24.0, n))
    return _clip_year(np.floor(d) * _DAY_S + hour * 3600.0 - _UTC_OFFSET_S[country])


def _clip_year(seconds: npt.ArrayLike) -> _I64:
    """Whole seconds, kept inside 2025."""
    return np.clip(np.floor(np.asarray(seconds, dtype=np.float64)), 0, _YEAR_S - 1).astype(np.int64)


def _monthly_schedule(
    rng: np.random.Generator, n_months: _I64, jitter_days: float, country: _I64, hours: tuple[float, float]
) -> tuple[_I64, _I64, _I64]:
    """Monthly transfers on a fixed day of month (with jitter): group, month number within group, ts."""
    n = n_months.size
    first = rng.integers(0, 12 - n_months + 1)
    day_of_month = rng.integers(4, 26, n)
    hour = rng.uniform(hours[0], hours[1], n)
    group, within = _ragged(n_months)
    day = _MONTH_START_DAY[first[group] + within] + day_of_month[group] - 1
    jitter = rng.uniform(-jitter_days, jitter_days, group.size)
    ts = (day + jitter) * _DAY_S + hour[group] * 3600.0 - _UTC_OFFSET_S[country[group]]
    return group, within, _clip_year(ts)


def _currency_for(rng: np.random.Generator, country: _I64) -> _I8:
    """A row currency drawn from the usual mix in the sender's country."""
    return _draw_per_country(rng, country, _CURRENCY_P).astype(np.int8)


def _local_amount(usd: _F64, currency: _I8) -> _F64:
    """The amount in the row currency (to the cent) for a USD value."""
    return np.asarray(np.round(usd / _RATE[currency], 2), dtype=np.float64)


def _usd_amount(local: _F64, currency: _I8) -> _F64:
    """amount_usd of a local amount at the fixed rates."""
    return np.asarray(np.round(local * _RATE[currency], 2), dtype=np.float64)


def _round_to(local: _F64, unit: _F64) -> _F64:
    """Round to a whole number of `unit` (at least one unit)."""
    return np.maximum(unit, np.round(local / unit) * unit)


def _ordinary_usd(rng: np.random.Generator, n: int, median: float = 150.0, sigma: float = 0.9) -> _F64:
    """Everyday transfer sizes: log-normal, kept below every near-threshold band."""
    return np.clip(np.exp(rng.normal(np.log(median), sigma, n)), 5.0, _MAX_ORDINARY_USD)


def _strip_diacritics(text: str) -> str:
    """ASCII-folded Latin text (Vietnamese đ included)."""
    text = text.replace("Đ", "D").replace("đ", "d")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# ---------------------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------------------
class _Tokens:
    """Name parts: romanised spelling, native spelling and an alternative romanisation."""

    def __init__(self) -> None:
        self.rom: list[str] = []
        self.native: list[str] = []
        self.alt: list[str] = []

    def pool(self, parts: Sequence[_Part]) -> _I64:
        """Register parts and return their token ids."""
        ids = []
        for rom, native, alt in parts:
            self.rom.append(rom)
            self.native.append(native)
            self.alt.append(alt)
            ids.append(len(self.rom) - 1)
        return np.array(ids, dtype=np.int64)


def _compose(heads: Sequence[_Part], tails: Sequence[_Part]) -> tuple[_Part, ...]:
    """Compound name parts (Thai and Lao surnames): every head joined to every different tail."""
    out: dict[str, _Part] = {}
    for h_rom, h_nat, h_alt in heads:
        for t_rom, t_nat, t_alt in tails:
            if h_rom.lower().endswith(t_rom.lower()):
                continue
            rom = h_rom + t_rom
            native = h_nat + t_nat if h_nat and t_nat else ""
            alt = h_alt + t_rom if h_alt else (h_rom + t_alt if t_alt else "")
            out.setdefault(rom, (rom, native, alt))
    return tuple(out.values())


def _optional(ids: _I64) -> _I64:
    """A slot that may stay empty (-1)."""
    return np.concatenate([np.array([-1], dtype=np.int64), ids])


@dataclass(frozen=True)
class _Scheme:
    """One way a culture builds a full name: a token pool per slot, and which slot is the family name."""

    slots: tuple[_I64, ...]
    surname_slot: int

    @property
    def size(self) -> int:
        """How many distinct names the scheme can make."""
        return int(np.prod([s.size for s in self.slots]))


@dataclass(frozen=True)
class _Culture:
    """How names of one origin are built and written."""

    schemes: tuple[_Scheme, ...]
    native_sep: str
    native_share: float
    nicknames: tuple[str, ...]
    alias_prefix: str
    commons: tuple[tuple[int, tuple[str | None, ...]], ...]

    @property
    def size(self) -> int:
        """How many distinct names the culture can make."""
        return sum(s.size for s in self.schemes)


def _make_cultures(tok: _Tokens) -> tuple[_Culture, ...]:
    """The eight name cultures, with common names that many unrelated customers share."""
    thai_given = tok.pool(_THAI_GIVEN)
    thai_surname = tok.pool(
        _compose(_THAI_SURNAME_HEAD, _THAI_SURNAME_TAIL)
        + _compose(_compose(_THAI_SURNAME_HEAD, _THAI_SURNAME_MID), _THAI_SURNAME_TAIL)
        + _THAI_SURNAME_WHOLE
    )
    khmer_surname, khmer_given = tok.pool(_KHMER_SURNAME), tok.pool(_KHMER_GIVEN)
    syllable = tok.pool(_BURMESE_SYLLABLE)
    v_family, v_middle, v_given = tok.pool(_VIET_FAMILY), tok.pool(_VIET_MIDDLE), tok.pool(_VIET_GIVEN)
    lao_given = tok.pool(_compose(_LAO_GIVEN_HEAD, _LAO_GIVEN_TAIL))
    lao_surname = tok.pool(_compose(_LAO_SURNAME_HEAD, _LAO_SURNAME_TAIL))
    ph_given, ph_surname = tok.pool(_FILIPINO_GIVEN), tok.pool(_FILIPINO_SURNAME)
    malay_m, malay_f = tok.pool(_MALAY_MALE), tok.pool(_MALAY_FEMALE)
    bin_, binti = tok.pool((("bin", "", ""),)), tok.pool((("binti", "", ""),))
    arab_given, arab_family = tok.pool(_ARAB_GIVEN), tok.pool(_ARAB_FAMILY)
    arab_father = arab_given[: len(_ARAB_GIVEN) - 5]  # fathers' names are the male ones
    return (
        _Culture(
            (_Scheme((thai_given, thai_surname), 1),),
            " ",
            0.04,
            _THAI_NICKNAMES,
            "Jae",
            ((0, ("Somchai", "Srisuk")), (0, ("Somsak", "Saetang"))),
        ),
        _Culture(
            (_Scheme((khmer_surname, khmer_given, _optional(khmer_given)), 0),),
            " ",
            0.04,
            (),
            "Bong",
            ((0, ("Sok", "Dara", None)), (0, ("Chan", "Sophea", None))),
        ),
        _Culture(
            (_Scheme((syllable, syllable, _optional(syllable)), -1),),
            "",
            0.04,
            (),
            "Ko",
            ((0, ("Aung", "Kyaw", "Moe")), (0, ("Thida", "Win", None))),
        ),
        _Culture(
            (_Scheme((v_family, v_middle, v_given, _optional(v_given)), 0),),
            " ",
            0.10,
            (),
            "Anh",
            ((0, ("Nguyen", "Van", "Nam", None)), (0, ("Tran", "Thi", "Lan", None))),
        ),
        _Culture(
            (_Scheme((lao_given, lao_surname), 1),),
            " ",
            0.0,
            _LAO_NICKNAMES,
            "Ai",
            ((0, ("Bounmy", "Phommachanh")),),
        ),
        _Culture(
            (
                _Scheme((malay_m, _optional(malay_m), bin_, malay_m), 3),
                _Scheme((malay_f, _optional(malay_f), binti, malay_m), 3),
            ),
            " ",
            0.0,
            (),
            "Abang",
            ((0, ("Ahmad", None, "bin", "Ismail")),),
        ),
        _Culture(
            (_Scheme((ph_given, ph_surname), 1), _Scheme((ph_given, ph_surname, ph_surname), 2)),
            " ",
            0.0,
            (),
            "Kuya",
            ((0, ("Maria", "Santos")), (0, ("Jose", "Reyes"))),
        ),
        _Culture(
            (_Scheme((arab_given, arab_father, arab_family), 2),),
            " ",
            0.0,
            (),
            "Abu",
            ((0, ("Mohammed", "Ahmed", "Al Mansouri")),),
        ),
    )


def _decode(culture: _Culture, index: _I64) -> tuple[_I64, _I64, _I64]:
    """Token ids (n x 4, -1 = empty), family-name token (-1 = none) and scheme of names by index."""
    sizes = np.array([s.size for s in culture.schemes], dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    scheme_of = np.searchsorted(np.cumsum(sizes), index, side="right")
    tokens = np.full((index.size, 4), -1, dtype=np.int64)
    surname = np.full(index.size, -1, dtype=np.int64)
    for s, scheme in enumerate(culture.schemes):
        mask = scheme_of == s
        local = index[mask] - starts[s]
        for j in range(len(scheme.slots) - 1, -1, -1):
            slot = scheme.slots[j]
            tokens[mask, j] = slot[local % slot.size]
            local = local // slot.size
        if scheme.surname_slot >= 0:
            surname[mask] = tokens[mask, scheme.surname_slot]
    return tokens, surname, scheme_of.astype(np.int64)


def _encode_common(tok: _Tokens, culture: _Culture, scheme_index: int, parts: tuple[str | None, ...]) -> int:
    """The index in the culture of a name given by its parts (None = empty optional slot)."""
    scheme = culture.schemes[scheme_index]
    index = 0
    for slot, part in zip(scheme.slots, parts, strict=True):
        names = ["" if t < 0 else tok.rom[t] for t in slot]
        index = index * slot.size + names.index(part if part is not None else "")
    return sum(s.size for s in culture.schemes[:scheme_index]) + index


def _words(tok: _Tokens, row: _I64, native: bool = False) -> list[str]:
    """The spelled parts of one name."""
    table = tok.native if native else tok.rom
    return [table[t] for t in row if t >= 0]


class _NameBank:
    """All name strings a world uses: common customer names, list names (disjoint) and one-off spellings."""

    FORMS: Final = 3  # title case, upper case, native script (or Vietnamese with diacritics)

    def __init__(self, rng: np.random.Generator, customers_per_culture: _I64) -> None:
        self.tok = _Tokens()
        self.cultures = _make_cultures(self.tok)
        self._list_order: list[_I64] = []
        self._list_cursor = np.zeros(_N_CULTURES, dtype=np.int64)
        bg_index: list[_I64] = []
        for e, culture in enumerate(self.cultures):
            order = rng.permutation(culture.size)
            commons = [_encode_common(self.tok, culture, s, p) for s, p in culture.commons]
            order = np.concatenate([commons, order[~np.isin(order, commons)]])
            cap = culture.size // 3
            n_bg = int(np.clip(customers_per_culture[e] // 15, 100, cap))
            bg_index.append(order[:n_bg])
            self._list_order.append(order[cap:])
        self.bg_count = np.array([b.size for b in bg_index], dtype=np.int64)
        self.bg_offset = _group_starts(self.bg_count)
        decoded = [_decode(c, b) for c, b in zip(self.cultures, bg_index, strict=True)]
        self.bg_tokens = np.concatenate([d[0] for d in decoded])
        self.bg_surname = np.concatenate([d[1] for d in decoded])
        self.table: list[str] = []
        for e, (tokens, _, _) in enumerate(decoded):
            for row in tokens:
                self.table.extend(self._forms(e, row))
        self.n_base_names = len(self.table)

    def _forms(self, culture: int, row: _I64) -> tuple[str, str, str]:
        """Title case, upper case and native spellings of one name (native falls back to title)."""
        title = " ".join(_words(self.tok, row))
        native_parts = _words(self.tok, row, native=True)
        native = self.cultures[culture].native_sep.join(native_parts) if all(native_parts) else title
        return title, title.upper(), native

    def customer_names(self, rng: np.random.Generator, culture: _I64) -> _I64:
        """Name ids for ordinary customers: popular names are much more common, a few in native script."""
        base = np.empty(culture.size, dtype=np.int64)
        form = np.empty(culture.size, dtype=np.int64)
        for e in range(_N_CULTURES):
            mask = culture == e
            k = int(mask.sum())
            if not k:
                continue
            base[mask] = self.bg_offset[e] + (self.bg_count[e] * rng.random(k) ** 1.8).astype(np.int64)
            share = self.cultures[e].native_share
            form[mask] = rng.choice(3, size=k, p=[0.58 - share / 2, 0.42 - share / 2, share])
        return base * self.FORMS + form

    def surname_of(self, name_id: _I64) -> _I64:
        """Family-name token of ordinary customer names (-1 for one-off spellings or no family name)."""
        base = name_id // self.FORMS
        ok = base < self.bg_surname.size
        return np.where(ok, self.bg_surname[np.minimum(base, self.bg_surname.size - 1)], -1)

    def take_list_names(self, culture: int, k: int) -> tuple[_I64, _I64, _I64]:
        """`k` new names for list entries: never used by ordinary customers, unique while they last."""
        order = self._list_order[culture]
        start = int(self._list_cursor[culture])
        pick = order[(start + np.arange(k)) % order.size]  # wraps (repeats names) only in huge worlds
        self._list_cursor[culture] += k
        return _decode(self.cultures[culture], pick)

    def random_base_title(self, rng: np.random.Generator, culture: int) -> tuple[str, _I64]:
        """A random ordinary name of a culture (title case) and its tokens."""
        base = int(self.bg_offset[culture] + rng.integers(0, self.bg_count[culture]))
        return self.table[base * self.FORMS], self.bg_tokens[base]

    def add(self, names: Sequence[str]) -> _I64:
        """Register one-off spellings; returns their name ids."""
        start = len(self.table)
        self.table.extend(names)
        return np.arange(start, start + len(names), dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------
# Name noise: how a list name is typed at a counter
# ---------------------------------------------------------------------------------------------------------
def _transliterate(rng: np.random.Generator, words: list[str], alts: list[str]) -> str | None:
    """Another romanisation: known alternatives for some parts, else a sound rule; None if nothing fits."""
    out = list(words)
    options = [i for i, a in enumerate(alts) if a]
    if options:
        chosen = [i for i in options if rng.random() < 0.7] or [options[int(rng.integers(len(options)))]]
        for i in chosen:
            out[i] = alts[i]
    else:
        for i in rng.permutation(len(words)):
            lower = words[i].lower()
            for old, new in _TRANSLIT_RULES:
                if old in lower[1:]:
                    out[i] = (lower[0] + lower[1:].replace(old, new, 1)).capitalize()
                    break
            if out[i] != words[i]:
                break
    result = " ".join(out)
    return result if result != " ".join(words) else None


def _typo(rng: np.random.Generator, words: list[str]) -> str | None:
    """One keyboard slip (drop, swap, double or neighbour key) inside a part of four letters or more."""
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return None
    i = candidates[int(rng.integers(len(candidates)))]
    w = words[i]
    pos = int(rng.integers(1, len(w) - 1))
    op = int(rng.integers(4))
    if op == 0:
        new = w[:pos] + w[pos + 1 :]
    elif op == 1 and w[pos] != w[pos + 1]:
        new = w[:pos] + w[pos + 1] + w[pos] + w[pos + 2 :]
    elif op == 2:
        new = w[:pos] + w[pos] + w[pos:]
    else:
        k = _KEYBOARD.find(w[pos].lower())
        neighbour = _KEYBOARD[k + 1] if 0 <= k < len(_KEYBOARD) - 1 and _KEYBOARD[k + 1] != " " else "e"
        new = w[:pos] + (neighbour if neighbour != w[pos].lower() else "a") + w[pos + 1 :]
    out = list(words)
    out[i] = new
    return " ".join(out)


def _noise_variants(
    rng: np.random.Generator,
    words: list[str],
    alts: list[str],
    other_name: str,
) -> dict[str, str]:
    """Candidate transaction spellings of a list name, one per noise kind that applies to it."""
    listed = " ".join(words)
    plain = [_strip_diacritics(w) for w in words]
    shout = rng.random() < 0.5

    def cased(text: str | None) -> str | None:
        """Upper-case the spelling when this entry is typed in capitals."""
        return None if text is None else (text.upper() if shout else text)

    folded = _strip_diacritics(listed)
    variants: dict[str, str | None] = {
        "exact": listed,
        "case_diacritics": folded.upper() if rng.random() < 0.8 else folded.lower(),
        "token_order": cased(" ".join(plain[1:] + plain[:1])) if len(plain) >= 2 else None,
        "transliteration": cased(_transliterate(rng, plain, alts)),
        "typo": cased(_typo(rng, plain)),
        "dropped_middle": cased(f"{plain[0]} {plain[-1]}") if len(plain) >= 3 else None,
        "phone_only": other_name,
    }
    return {
        k: v
        for k, v in variants.items()
        if v and (k == "exact" or (v != listed and (k == "case_diacritics" or v.lower() != folded.lower())))
    }


_NOISE_WEIGHTS: Final[Mapping[str, float]] = {
    "exact": 0.10,
    "case_diacritics": 0.20,
    "token_order": 0.15,
    "transliteration": 0.20,
    "typo": 0.15,
    "dropped_middle": 0.10,
    "phone_only": 0.10,
}


def _choose_noise(rng: np.random.Generator, variants: Mapping[str, str], has_phone: bool) -> str:
    """Pick a noise kind among those that apply; without a phone only recognisable spellings qualify."""
    kinds = [k for k in NOISES if k in variants and (has_phone or k not in PHONE_REQUIRED_NOISES)]
    weights = np.array([_NOISE_WEIGHTS[k] for k in kinds])
    return kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]


# ---------------------------------------------------------------------------------------------------------
# Phones
# ---------------------------------------------------------------------------------------------------------
class _PhoneBook:
    """Hands out distinct random mobile numbers per country (national significant numbers)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._used = [np.zeros(0, dtype=np.int64) for _ in range(_N_COUNTRIES)]

    def allocate(self, country: _I64) -> _I64:
        """One new number for each entry of `country`, never one handed out before."""
        out = np.empty(country.size, dtype=np.int64)
        for c in range(_N_COUNTRIES):
            mask = country == c
            k = int(mask.sum())
            if k:
                out[mask] = self._draw(c, k)
        return out

    def _draw(self, country: int, k: int) -> _I64:
        """`k` fresh numbers of one country: a mobile prefix and random digits."""
        _, _, prefixes, length = _PHONE_PLAN[country]
        modulus = 10 ** (length - len(prefixes[0]))
        used = self._used[country]  # sorted
        got = np.zeros(0, dtype=np.int64)
        while got.size < k:
            candidates = self._rng.integers(0, len(prefixes) * modulus, size=k - got.size + 16)
            at = np.minimum(np.searchsorted(used, candidates), max(used.size - 1, 0))
            fresh = used[at] != candidates if used.size else np.ones(candidates.size, dtype=bool)
            candidates = candidates[fresh]
            candidates = candidates[~np.isin(candidates, got)]
            _, first = np.unique(candidates, return_index=True)
            got = np.concatenate([got, candidates[np.sort(first)]])[:k]
        # two sorted runs: the stable sort (timsort) merges them in linear time
        self._used[country] = np.sort(np.concatenate([used, np.sort(got)]), kind="stable")
        prefix = np.array([int(p) for p in prefixes], dtype=np.int64)
        return np.asarray(prefix[got // modulus] * modulus + got % modulus, dtype=np.int64)


def _e164(country: int, nsn: int) -> str:
    """A phone in E.164 as lists write it (+66812345678)."""
    return f"+{_PHONE_PLAN[country][0]}{nsn}"


# ---------------------------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------------------------
_CUSTOMER_FIELDS: Final = (
    "res",
    "culture",
    "name_id",
    "phone",
    "phone_ctry",
    "phone_req",
    "home_agent",
    "prim",
    "sec",
)


class _Customers:
    """Customer attributes: a large fixed background population plus parties added for patterns."""

    def __init__(self, base: dict[str, np.ndarray]) -> None:
        self._base = base
        self.n_base = int(base["res"].size)
        self.n = self.n_base
        self._added: dict[str, list[np.ndarray]] = {f: [] for f in _CUSTOMER_FIELDS}
        self._cache: dict[str, np.ndarray] | None = None

    def add(self, **columns: np.ndarray) -> _I64:
        """Append customers; returns their indices."""
        k = int(columns["res"].size)
        for f in _CUSTOMER_FIELDS:
            self._added[f].append(np.asarray(columns[f]).astype(self._base[f].dtype))
        self._cache = None
        index = np.arange(self.n, self.n + k, dtype=np.int64)
        self.n += k
        return index

    def _added_columns(self) -> dict[str, np.ndarray]:
        """The added customers as whole columns (cached until the next add)."""
        if self._cache is None:
            self._cache = {f: np.concatenate([self._base[f][:0], *self._added[f]]) for f in _CUSTOMER_FIELDS}
        return self._cache

    def get(self, name: str, index: npt.ArrayLike) -> np.ndarray:
        """One attribute of the given customers."""
        idx = np.asarray(index, dtype=np.int64)
        base = self._base[name]
        out = np.empty(idx.size, dtype=base.dtype)
        in_base = idx < self.n_base
        out[in_base] = base[idx[in_base]]
        if not in_base.all():
            out[~in_base] = self._added_columns()[name][idx[~in_base] - self.n_base]
        return out

    def columns(self) -> dict[str, np.ndarray]:
        """Every customer's attributes as whole columns."""
        added = self._added_columns()
        return {f: np.concatenate([self._base[f], added[f]]) for f in _CUSTOMER_FIELDS}


def _corridors(rng: np.random.Generator, res: _I64, culture: _I64) -> tuple[_I64, _I64]:
    """Where a customer usually sends (home for migrants, own country otherwise) and the other place."""
    home = _CULTURE_HOME[culture]
    migrant = home != res
    prim = np.where(migrant, home, res)
    pick = rng.integers(0, _DEST.size, res.size)
    other = np.where(_DEST[pick] == res, _DEST[(pick + 1) % _DEST.size], _DEST[pick])
    sec = np.where(migrant, np.where(_HAS_RECEIVERS[res], res, home), other)
    return prim, sec


# ---------------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------------
@dataclass
class _Block:
    """Transfers as numbers (indices into customers, agents and currencies); strings are made on write."""

    ts: _I64  # seconds since 2025-01-01T00:00:00Z
    sender: _I64
    receiver: _I64
    amount: _F64
    amount_usd: _F64
    currency: _I8
    agent: _I64
    s_fmt: _I8  # phone format of the sender (-1 = no phone on the row)
    r_fmt: _I8
    tag: _I64  # global pattern number, -1 = not part of a pattern
    txn_num: _I64  # number in the txn id; 0 until laid out
    defect: _I8  # 0 ok; 1/2 txn_id null/blank; 3/4 sender_id null/blank; 5/6 receiver_id null/blank

    def __len__(self) -> int:
        return int(self.ts.size)

    def take(self, index: npt.ArrayLike) -> _Block:
        """The given rows."""
        return _Block(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def put(self, mask: _B, other: _Block) -> None:
        """Overwrite the rows under `mask` with `other` (in order)."""
        for f in fields(self):
            getattr(self, f.name)[mask] = getattr(other, f.name)

    @staticmethod
    def concat(blocks: Sequence[_Block]) -> _Block:
        """Rows of several blocks, in order."""
        names = [f.name for f in fields(_Block)]
        return _Block(**{name: np.concatenate([getattr(b, name) for b in blocks]) for name in names})

    @staticmethod
    def empty(n: int) -> _Block:
        """`n` zeroed rows."""
        return _Block(
            ts=np.zeros(n, np.int64),
            sender=np.zeros(n, np.int64),
            receiver=np.zeros(n, np.int64),
            amount=np.zeros(n, np.float64),
            amount_usd=np.zeros(n, np.float64),
            currency=np.zeros(n, np.int8),
            agent=np.zeros(n, np.int64),
            s_fmt=np.zeros(n, np.int8),
            r_fmt=np.zeros(n, np.int8),
            tag=np.full(n, -1, np.int64),
            txn_num=np.zeros(n, np.int64),
            defect=np.zeros(n, np.int8),
        )


def _phone_formats(rng: np.random.Generator, phone: _I64, required: _B) -> _I8:
    """How each row writes a customer's phone; -1 where the row has none."""
    n = phone.size
    fmt = rng.choice(_PHONE_FORMAT_P.size, size=n, p=_PHONE_FORMAT_P).astype(np.int8)
    dropped = (rng.random(n) < _PHONE_NULL_P) & ~required
    return np.where(dropped | (phone < 0), -1, fmt).astype(np.int8)


# ---------------------------------------------------------------------------------------------------------
# List entries (officials, network members)
# ---------------------------------------------------------------------------------------------------------
@dataclass
class _Persons:
    """Entries of a list: officials or network members."""

    ids: list[str]
    culture: _I64
    countries: list[list[int]]
    tokens: _I64  # (n, 4) token ids
    surname: _I64
    scheme: _I64  # naming scheme within the culture
    words: list[list[str]]  # the name as listed, part by part
    alts: list[list[str]]  # alternative romanisation per part ("" = none)
    phones: list[list[tuple[int, int]]]  # (country, national number)
    network: _I64  # network index, -1 for officials
    role: list[str]

    def name(self, i: int) -> str:
        """The name of entry i as listed."""
        return " ".join(self.words[i])


def _list_persons(
    names: _NameBank,
    rng: np.random.Generator,
    phones: _PhoneBook,
    culture: _I64,
    countries: list[list[int]],
    phone_counts: _I64,
) -> tuple[_I64, _I64, _I64, list[list[str]], list[list[str]], list[list[tuple[int, int]]]]:
    """Names (unique list names per culture) and phones of new list entries."""
    n = culture.size
    tokens = np.full((n, 4), -1, dtype=np.int64)
    surname = np.full(n, -1, dtype=np.int64)
    scheme = np.zeros(n, dtype=np.int64)
    for e in range(_N_CULTURES):
        idx = np.flatnonzero(culture == e)
        if idx.size:
            tokens[idx], surname[idx], scheme[idx] = names.take_list_names(e, idx.size)
    diacritics = (culture == E_VIET) & (rng.random(n) < 0.7)
    words = [_words(names.tok, tokens[i], native=bool(diacritics[i])) for i in range(n)]
    alts = [[names.tok.alt[t] for t in row if t >= 0] for row in tokens]
    owner, second = _ragged(phone_counts)
    phone_country = np.array(
        [countries[o][min(s, len(countries[o]) - 1)] for o, s in zip(owner, second, strict=True)],
        dtype=np.int64,
    )
    numbers = phones.allocate(phone_country)
    by_person: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for o, c, number in zip(owner, phone_country, numbers, strict=True):
        by_person[int(o)].append((int(c), int(number)))
    return tokens, surname, scheme, words, alts, by_person


def _official_ids(rng: np.random.Generator, n: int) -> list[str]:
    """OpenSanctions-style ids: Wikidata QIDs for some, `osp-` + hex for the rest (all distinct)."""
    qids = 10_000 + _sorted_distinct(rng, n, 90_000_000)
    qids = qids[rng.permutation(n)]
    hexes = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    wikidata = rng.random(n) < 0.45
    ids = [f"Q{q}" if w else f"osp-{h:016x}" for q, h, w in zip(qids, hexes, wikidata, strict=True)]
    if len(set(ids)) != n:  # 64-bit collision: astronomically unlikely, but never emit duplicates
        ids = [f"{v}-{i}" for i, v in enumerate(ids)]
    return ids


def _timestamps_text(rng: np.random.Generator, n: int) -> tuple[list[str], list[str], list[str]]:
    """first_seen <= last_change <= last_seen, ISO seconds, between 2021 and the end of 2025."""
    lo = int(np.datetime64("2021-01-01T00:00:00", "s").astype(np.int64))
    hi = _YEAR_START_S + _YEAR_S - 1
    first = rng.integers(lo, hi - 200 * _DAY_S, n)
    change = first + (rng.random(n) * (hi - first)).astype(np.int64)
    seen = change + (rng.random(n) * (hi - change)).astype(np.int64)

    def text(v: _I64) -> list[str]:
        """Epoch seconds as ISO text."""
        return [str(s) for s in np.datetime_as_string(v.astype("datetime64[s]"), unit="s")]

    return text(first), text(seen), text(change)


def _birth_dates(rng: np.random.Generator, n: int) -> list[str]:
    """Full dates for most, a year only for some, empty for the rest."""
    lo = int(np.datetime64("1955-01-01", "D").astype(np.int64))
    days = rng.integers(lo, lo + 36 * 365, n)
    full = np.datetime_as_string(days.astype("datetime64[D]"), unit="D")
    kind = rng.random(n)
    return [str(d) if k < 0.7 else (str(d)[:4] if k < 0.8 else "") for d, k in zip(full, kind, strict=True)]


# ---------------------------------------------------------------------------------------------------------
# Pattern metadata
# ---------------------------------------------------------------------------------------------------------
@dataclass
class _Patterns:
    """Patterns of one kind: their truth (subjects, parties, list links) and rows (tag = local index)."""

    kind: str
    suspicious: bool
    typology: str | None
    variant: list[str]
    subject: _I64
    counterparty: _I64  # -1 = none
    party_values: _I64  # all customers involved, pattern after pattern (subject first)
    party_counts: _I64
    official: _I64  # official index, -1 = none
    network: _I64  # network index, -1 = none
    threshold: _F64  # nan = not applicable
    rows: _Block

    @property
    def n(self) -> int:
        """Number of patterns."""
        return int(self.subject.size)


def _with_subject(subject: _I64, others: _I64, other_counts: _I64) -> tuple[_I64, _I64]:
    """Party lists with the subject first, then the other parties of each pattern."""
    counts = other_counts + 1
    out = np.empty(int(counts.sum()), dtype=np.int64)
    starts = _group_starts(counts)
    out[starts] = subject
    mask = np.ones(out.size, dtype=bool)
    mask[starts] = False
    out[mask] = others
    return out, counts


def _unique_parties(group: _I64, party: _I64, n: int) -> tuple[_I64, _I64]:
    """Distinct parties per group, sorted within the group, and their counts."""
    key = np.unique(group * (int(party.max(initial=0)) + 1) + party)
    width = int(party.max(initial=0)) + 1
    return key % width, np.bincount(key // width, minlength=n).astype(np.int64)


# ---------------------------------------------------------------------------------------------------------
# The world
# ---------------------------------------------------------------------------------------------------------
@dataclass
class _World:
    """Everything needed to write the files: customers, agents, special rows laid out by position."""

    rows: int
    seed: int
    customers: dict[str, np.ndarray]
    customer_number: _I64
    name_table: pa.Array
    sender_pool: _I64
    recv_members: _I64
    recv_offsets: _I64
    agent_members: _I64
    agent_offsets: _I64
    agent_width: int
    special: _Block  # ordered by position
    special_pos: _I64
    officials_rows: list[list[str]]
    network_rows: list[list[str]]
    labels: pa.Table
    identities: pa.Table
    pattern_counts: dict[str, int]
    bad_counts: dict[str, int]
    source_counts: dict[str, int]
    sizes: dict[str, int]


class _Builder:
    """Builds a world step by step: population, lists, patterns, bad rows, layout."""

    def __init__(self, rows: int, seed: int) -> None:
        self.rows = rows
        self.seed = seed
        self.phones = _PhoneBook(_rng(seed, _S_PHONES))
        self._agents()
        self._population()
        self.patterns: list[_Patterns] = []
        self.extras: list[_Block] = []
        self.identity_rows: list[tuple[int, str, str, str | None, str, bool]] = []

    # -- population ------------------------------------------------------------------------------------
    def _agents(self) -> None:
        """Agents per country (at least two everywhere, so transfers can hop between agents)."""
        n = max(50, self.rows // 2000)
        per_country = np.maximum(2, np.round(_AGENT_SHARE * n)).astype(np.int64)
        country = np.repeat(np.arange(_N_COUNTRIES, dtype=np.int64), per_country)
        self.agent_members, self.agent_offsets = _grouped(np.arange(country.size, dtype=np.int64), country, 9)
        self.agent_width = max(4, len(str(country.size)))

    def _agent_in(self, rng: np.random.Generator, country: _I64) -> _I64:
        """A random agent in each given country."""
        return _pick_in_groups(rng, self.agent_members, self.agent_offsets, country)

    def _population(self) -> None:
        """Background customers: migrants who send home, and receivers (some of whom also send)."""
        rng = _rng(self.seed, _S_POPULATION)
        n_send = max(50, self.rows // 20)
        n_recv = max(50, self.rows // 15)
        n_migrant = round(0.8 * n_send)
        m_res = _HOST[rng.choice(_HOST.size, n_migrant, p=_MIGRANT_HOST_P)]
        m_cul = _draw_per_country(rng, m_res, _MIGRANT_CULTURE_P)
        receiving = np.flatnonzero(_HAS_RECEIVERS)
        more = rng.choice(_N_COUNTRIES, n_recv - receiving.size, p=_RECEIVER_COUNTRY_P)
        r_res = np.concatenate([receiving, more])  # every receiving country has someone
        r_cul = _draw_per_country(rng, r_res, _RESIDENT_CULTURE_P)
        res = np.concatenate([m_res, r_res]).astype(np.int64)
        culture = np.concatenate([m_cul, r_cul]).astype(np.int64)
        n = res.size
        self.names = _NameBank(_rng(self.seed, _S_NAMES), np.bincount(culture, minlength=_N_CULTURES))
        has_phone = rng.random(n) < _PHONE_OWNED_P
        phone = np.full(n, -1, dtype=np.int64)
        phone[has_phone] = self.phones.allocate(res[has_phone])
        prim, sec = _corridors(rng, res, culture)
        self.cust = _Customers(
            {
                "res": res.astype(np.int8),
                "culture": culture.astype(np.int8),
                "name_id": self.names.customer_names(rng, culture),
                "phone": phone,
                "phone_ctry": res.astype(np.int8),
                "phone_req": np.zeros(n, dtype=bool),
                "home_agent": self._agent_in(rng, res),
                "prim": prim.astype(np.int8),
                "sec": sec.astype(np.int8),
            }
        )
        domestic = n_migrant + rng.choice(n_recv, n_send - n_migrant, replace=False)
        self.sender_pool = rng.permutation(np.concatenate([np.arange(n_migrant), domestic])).astype(np.int64)
        receivers = np.arange(n_migrant, n, dtype=np.int64)
        self.recv_members, self.recv_offsets = _grouped(receivers, r_res, _N_COUNTRIES)
        everyone = np.arange(n, dtype=np.int64)
        self.resident_members, self.resident_offsets = _grouped(everyone, res, _N_COUNTRIES)
        pool = self.sender_pool
        self.sendto_members, self.sendto_offsets = _grouped(pool, prim[pool], _N_COUNTRIES)

    def new_people(
        self,
        rng: np.random.Generator,
        res: _I64,
        culture: _I64,
        *,
        name_id: _I64 | None = None,
        phone_p: float = _PHONE_OWNED_P,
        phone_required: bool = False,
    ) -> _I64:
        """Add dedicated customers (pattern parties) living in `res`; ordinary names unless given."""
        n = res.size
        if name_id is None:
            name_id = self.names.customer_names(rng, culture)
        has_phone = np.ones(n, dtype=bool) if phone_required else rng.random(n) < phone_p
        phone = np.full(n, -1, dtype=np.int64)
        phone[has_phone] = self.phones.allocate(res[has_phone])
        prim, sec = _corridors(rng, res, culture)
        return self.cust.add(
            res=res,
            culture=culture,
            name_id=name_id,
            phone=phone,
            phone_ctry=res,
            phone_req=has_phone & phone_required,
            home_agent=self._agent_in(rng, res),
            prim=prim,
            sec=sec,
        )

    def receivers_in(self, rng: np.random.Generator, country: _I64, skew: float = 1.2) -> _I64:
        """Background receivers living in the given countries (popular ones more often)."""
        return _pick_in_groups(rng, self.recv_members, self.recv_offsets, country, skew)

    def residents(self, rng: np.random.Generator, country: int, k: int) -> _I64:
        """`k` different background customers living in a country (repeats only if too few live there)."""
        members = self.resident_members[self.resident_offsets[country] : self.resident_offsets[country + 1]]
        if members.size == 0:
            members = self.sender_pool
        return members[rng.choice(members.size, size=k, replace=k > members.size)]

    def senders_to(self, rng: np.random.Generator, country: _I64) -> _I64:
        """Background senders who usually send to the given countries."""
        return _pick_in_groups(rng, self.sendto_members, self.sendto_offsets, country)

    def agents_for(self, rng: np.random.Generator, sender: _I64, p_home: float) -> _I64:
        """The agent of each transfer: the sender's usual agent or another one in the sender's country."""
        home = self.cust.get("home_agent", sender).astype(np.int64)
        other = self._agent_in(rng, self.cust.get("res", sender).astype(np.int64))
        return np.where(rng.random(sender.size) < p_home, home, other)

    def rows_block(
        self,
        rng: np.random.Generator,
        ts: _I64,
        sender: _I64,
        receiver: _I64,
        local: _F64,
        currency: _I8,
        agent: _I64,
        tag: _I64,
    ) -> _Block:
        """Pattern rows from their parts (amount in the row currency; amount_usd derived)."""
        n = ts.size
        return _Block(
            ts=ts.astype(np.int64),
            sender=sender.astype(np.int64),
            receiver=receiver.astype(np.int64),
            amount=local,
            amount_usd=_usd_amount(local, currency),
            currency=currency.astype(np.int8),
            agent=agent.astype(np.int64),
            s_fmt=_phone_formats(rng, self.cust.get("phone", sender), self.cust.get("phone_req", sender)),
            r_fmt=_phone_formats(rng, self.cust.get("phone", receiver), self.cust.get("phone_req", receiver)),
            tag=tag.astype(np.int64),
            txn_num=np.zeros(n, np.int64),
            defect=np.zeros(n, np.int8),
        )

    def res_of(self, index: _I64) -> _I64:
        """Country of residence of customers."""
        return self.cust.get("res", index).astype(np.int64)

    def culture_of(self, index: _I64) -> _I64:
        """Name culture of customers."""
        return self.cust.get("culture", index).astype(np.int64)

    # -- lists ---------------------------------------------------------------------------------------------
    def build_officials(self) -> None:
        """The officials list: mostly people who never transact."""
        rng = _rng(self.seed, _S_OFFICIALS)
        n = official_count_for(self.rows)
        country = rng.choice(_N_COUNTRIES, n, p=_OFFICIAL_COUNTRY_P)
        culture = np.array([_COUNTRY_CULTURE[int(c)] for c in country], dtype=np.int64)
        countries = [
            [int(c)] + ([int(n2)] if rng.random() < 0.05 else [])
            for c, n2 in zip(country, rng.choice(_DEST, n), strict=True)
        ]
        countries = [c if len(c) == 1 or c[0] != c[1] else c[:1] for c in countries]
        phone_counts = rng.choice(3, n, p=[0.25, 0.55, 0.20])
        listed = _list_persons(self.names, rng, self.phones, culture, countries, phone_counts)
        self.officials = _Persons(
            _official_ids(rng, n), culture, countries, *listed, np.full(n, -1, np.int64), [""] * n
        )
        self.official_extra = self._official_columns(rng)

    def _official_columns(self, rng: np.random.Generator) -> list[dict[str, str]]:
        """The descriptive columns of officials.csv (aliases, dates, datasets, ...)."""
        p = self.officials
        n = len(p.ids)
        first, last, change = _timestamps_text(rng, n)
        birth = _birth_dates(rng, n)
        out = []
        for i in range(n):
            home = p.countries[i][0]
            datasets = _OFFICIAL_DATASETS[home]
            dataset = datasets[int(rng.integers(len(datasets)))]
            if rng.random() < 0.3:
                dataset = f"{dataset};peps"
            sanctions = ""
            if dataset.startswith("mm_military") and rng.random() < 0.3:
                sanctions = _MM_SANCTIONS[int(rng.integers(len(_MM_SANCTIONS)))]
            address = ""
            if rng.random() < 0.2:
                places = _PLACES[home]
                address = f"{places[int(rng.integers(len(places)))]}, {COUNTRIES[home]}"
            email = ""
            if rng.random() < 0.08:
                plain = [_strip_diacritics(w).lower().replace(" ", "") for w in p.words[i]]
                email = f"{plain[0]}.{plain[-1][:1]}@{_EMAIL_DOMAINS[home]}"
            out.append(
                {
                    "aliases": ";".join(self._official_aliases(rng, i)),
                    "birth_date": birth[i],
                    "addresses": address,
                    "sanctions": sanctions,
                    "emails": email,
                    "dataset": dataset,
                    "first_seen": first[i],
                    "last_seen": last[i],
                    "last_change": change[i],
                }
            )
        return out

    def _official_aliases(self, rng: np.random.Generator, i: int) -> list[str]:
        """Aliases of an official: native script, another romanisation, or the plain-ASCII spelling."""
        p = self.officials
        culture = int(p.culture[i])
        name = p.name(i)
        aliases: list[str] = []
        native = _words(self.names.tok, p.tokens[i], native=True)
        if culture in (E_THAI, E_KHMER, E_BURMESE) and all(native) and rng.random() < 0.6:
            aliases.append(self.names.cultures[culture].native_sep.join(native))
        if rng.random() < 0.35:
            variant = _transliterate(rng, [_strip_diacritics(w) for w in p.words[i]], p.alts[i])
            if variant:
                aliases.append(variant)
        if culture == E_VIET and _strip_diacritics(name) != name and rng.random() < 0.5:
            aliases.append(_strip_diacritics(name))
        return [a for a in dict.fromkeys(aliases) if a != name]

    def build_networks(self) -> None:
        """Known trafficking networks: 3-8 members each, the first one a likely payer of officials."""
        rng = _rng(self.seed, _S_NETWORKS)
        n_net = network_count_for(self.rows)
        size = rng.integers(3, 9, n_net)
        base = rng.choice(_N_COUNTRIES, n_net, p=_NETWORK_BASE_P)
        group, within = _ragged(size)
        home_culture = np.array([_COUNTRY_CULTURE[int(c)] for c in base[group]], dtype=np.int64)
        migrant_culture = _draw_per_country(rng, base[group], _MIGRANT_CULTURE_P)
        foreign = (rng.random(group.size) < 0.5) & np.isin(base[group], _HOST)
        culture = np.where(foreign, migrant_culture, home_culture)
        countries = []
        for b, c in zip(base[group], culture, strict=True):
            origin = int(_CULTURE_HOME[c])
            countries.append([int(b)] + ([origin] if origin != b and rng.random() < 0.6 else []))
        phone_counts = rng.choice(3, group.size, p=[0.15, 0.55, 0.30])
        listed = _list_persons(self.names, rng, self.phones, culture, countries, phone_counts)
        role = [
            (_PAYER_ROLES if w == 0 else ROLES)[int(rng.integers(len(_PAYER_ROLES if w == 0 else ROLES)))]
            for w in within
        ]
        ids = [f"NE{i + 1:06d}" for i in range(group.size)]
        self.members = _Persons(ids, culture, countries, *listed, group, role)
        self.n_networks = n_net
        self.member_offsets = np.concatenate([[0], np.cumsum(size)]).astype(np.int64)
        self.member_aliases = [self._member_aliases(rng, i) for i in range(group.size)]

    def _member_aliases(self, rng: np.random.Generator, i: int) -> list[str]:
        """Street names of a network member ("Ko Aung", "Jae Noi") and the native spelling."""
        p = self.members
        culture = self.names.cultures[int(p.culture[i])]
        aliases = []
        if rng.random() < 0.6:
            given = p.words[i][-1] if int(p.culture[i]) in (E_VIET, E_KHMER) else p.words[i][0]
            if culture.nicknames and rng.random() < 0.5:
                given = culture.nicknames[int(rng.integers(len(culture.nicknames)))]
            aliases.append(f"{culture.alias_prefix} {_strip_diacritics(given)}")
        native = _words(self.names.tok, p.tokens[i], native=True)
        if int(p.culture[i]) in (E_THAI, E_KHMER, E_BURMESE) and all(native) and rng.random() < 0.3:
            aliases.append(culture.native_sep.join(native))
        return aliases

    # -- list people who transact ------------------------------------------------------------------------
    def list_customers(
        self, rng: np.random.Generator, persons: _Persons, which: _I64, list_kind: str
    ) -> dict[int, int]:
        """Customers for list entries, named with noise relative to the list; records their identities."""
        names: list[str] = []
        phone = np.full(which.size, -1, dtype=np.int64)
        phone_ctry = np.zeros(which.size, dtype=np.int64)
        required = np.zeros(which.size, dtype=bool)
        noises: list[str] = []
        for k, j in enumerate(which.tolist()):
            other = self._other_name(rng, int(persons.culture[j]), persons, j)
            variants = _noise_variants(rng, persons.words[j], persons.alts[j], other)
            noise = _choose_noise(rng, variants, has_phone=bool(persons.phones[j]))
            names.append(variants[noise])
            noises.append(noise)
            if persons.phones[j] and (noise in PHONE_REQUIRED_NOISES or rng.random() < 0.6):
                c, number = persons.phones[j][int(rng.integers(len(persons.phones[j])))]
                phone[k], phone_ctry[k], required[k] = number, c, noise in PHONE_REQUIRED_NOISES
        res = np.array([persons.countries[int(j)][0] for j in which], dtype=np.int64)
        culture = persons.culture[which]
        prim, sec = _corridors(rng, res, culture)
        index = self.cust.add(
            res=res,
            culture=culture,
            name_id=self.names.add(names),
            phone=phone,
            phone_ctry=phone_ctry,
            phone_req=required,
            home_agent=self._agent_in(rng, res),
            prim=prim,
            sec=sec,
        )
        for k, j in enumerate(which):
            network = persons.network[int(j)]
            self.identity_rows.append(
                (
                    int(index[k]),
                    list_kind,
                    persons.ids[int(j)],
                    f"N-{network + 1}" if network >= 0 else None,
                    noises[k],
                    True,
                )
            )
        return {int(j): int(i) for j, i in zip(which, index, strict=True)}

    def _other_name(self, rng: np.random.Generator, culture: int, persons: _Persons, j: int) -> str:
        """A name that has nothing in common with the listed one: a nickname or someone else's name."""
        nicknames = self.names.cultures[culture].nicknames
        if nicknames:
            nick = nicknames[int(rng.integers(len(nicknames)))]
            prefix = ("", "Khun ", "Jae ", "Pi ")[int(rng.integers(4))] if culture == E_THAI else ""
            return f"{prefix}{nick}"
        listed = {_strip_diacritics(w).lower() for w in persons.words[j]}
        title = ""
        for _ in range(20):
            title, _tokens = self.names.random_base_title(rng, culture)
            if not listed & {w.lower() for w in title.split()}:
                break
        return title

    def namesake_customers(
        self, rng: np.random.Generator, persons: _Persons, which: _I64, res: _I64, list_kind: str
    ) -> _I64:
        """Unrelated customers with the same name as list entries, elsewhere and with their own phones."""
        names = []
        noises = []
        for j in which:
            listed = persons.name(int(j))
            folded = _strip_diacritics(listed).upper()
            if rng.random() < 0.6:
                names.append(listed)
                noises.append("exact")
            else:
                names.append(folded)
                noises.append("case_diacritics")
        culture = persons.culture[which]
        index = self.new_people(rng, res, culture, name_id=self.names.add(names), phone_required=True)
        for k, j in enumerate(which):
            # network_id stays empty: a namesake belongs to no network (list_id names the entry resembled)
            self.identity_rows.append((int(index[k]), list_kind, persons.ids[int(j)], None, noises[k], False))
        return index

    # -- pattern plans -----------------------------------------------------------------------------------
    def plan(self, counts: Mapping[str, int]) -> None:
        """Decide which list entries transact, and create their customers."""
        rng = _rng(self.seed, _S_PLAN)
        self._plan_recurring(rng, counts[RECURRING])
        self._plan_relatives(rng, counts[RELATIVE])
        self._plan_flows(rng, counts[NETWORK_FLOW])
        self._plan_namesakes(rng, counts[NAMESAKE], counts[FAMILY])
        id_rng = _rng(self.seed, _S_IDENTITY)
        used_officials = np.unique(np.concatenate([self.rec_official, self.rel_official])).astype(np.int64)
        self.official_customer = self.list_customers(id_rng, self.officials, used_officials, "official")
        used_members = np.unique(
            np.concatenate([self.rec_member[self.rec_member >= 0]] + [f for f in self.flow_members])
        ).astype(np.int64)
        self.member_customer = self.list_customers(id_rng, self.members, used_members, "network")

    def _official_pools(self, rng: np.random.Generator) -> list[list[int]]:
        """Officials of each country in random order (used as queues)."""
        home = np.array([c[0] for c in self.officials.countries], dtype=np.int64)
        order = rng.permutation(home.size)
        return [[int(i) for i in order if home[i] == c] for c in range(_N_COUNTRIES)]

    def _take_official(
        self, rng: np.random.Generator, pools: list[list[int]], used: set[int], country: int, avoid: int
    ) -> int:
        """An unused official of a country (or a neighbour) whose family name is not `avoid`."""
        for c in [country, *_NEIGHBOURS.get(country, ()), *range(_N_COUNTRIES)]:
            for o in pools[c]:
                if o not in used and (avoid < 0 or int(self.officials.surname[o]) != avoid):
                    used.add(o)
                    return int(o)
        raise ValueError("the officials list is too small for the planted patterns")

    def _plan_recurring(self, rng: np.random.Generator, n: int) -> None:
        """Payers (network members for ~70%) and the officials they pay (same country for ~90%)."""
        n_net = round(0.7 * n)
        member = np.full(n, -1, dtype=np.int64)
        order = rng.permutation(self.n_networks)
        for j in range(n_net):
            net = int(order[j % self.n_networks])
            lo, hi = int(self.member_offsets[net]), int(self.member_offsets[net + 1])
            payers = [m for m in range(lo, hi) if self.members.role[m] in _PAYER_ROLES] or [lo]
            member[j] = payers[(j // self.n_networks) % len(payers)]
        unlisted_res = rng.choice(
            np.array([TH, MY, KH, MM, LA, VN, PH]), n, p=[0.45, 0.15, 0.13, 0.1, 0.08, 0.05, 0.04]
        )
        member_res = [self.members.countries[int(m)][0] if m >= 0 else 0 for m in member]
        res = np.where(member >= 0, member_res, unlisted_res)
        pools = self._official_pools(rng)
        self.used_officials: set[int] = set()
        officials = np.empty(n, dtype=np.int64)
        for j in range(n):
            country = int(res[j])
            if rng.random() >= 0.9 and country in _NEIGHBOURS:
                neighbours = _NEIGHBOURS[country]
                country = neighbours[int(rng.integers(len(neighbours)))]
            avoid = int(self.members.surname[member[j]]) if member[j] >= 0 else -1
            officials[j] = self._take_official(rng, pools, self.used_officials, country, avoid)
        self.rec_member, self.rec_res, self.rec_official = member, res.astype(np.int64), officials
        self._pools = pools

    def _plan_relatives(self, rng: np.random.Generator, n: int) -> None:
        """Officials who get support from a relative abroad: half of them also take payments."""
        has_surname = self.officials.surname >= 0
        recurring = [int(o) for o in rng.permutation(self.rec_official) if has_surname[o]]
        chosen: list[int] = recurring[: n // 2]
        taken = set(chosen)
        for c in rng.permutation(_N_COUNTRIES):
            for o in self._pools[int(c)]:
                if len(chosen) >= n:
                    break
                if o not in taken and o not in self.used_officials and has_surname[o]:
                    chosen.append(o)
                    taken.add(o)
        self.rel_official = np.array(chosen[:n], dtype=np.int64)
        self.used_officials |= taken

    def _plan_flows(self, rng: np.random.Generator, n: int) -> None:
        """Members who move money among themselves: every network with a payer first."""
        paying = list(dict.fromkeys(int(self.members.network[m]) for m in self.rec_member if m >= 0))
        paying_set = set(paying)
        others = [int(i) for i in rng.permutation(self.n_networks) if int(i) not in paying_set]
        self.flow_network = np.array((paying + others)[:n], dtype=np.int64)
        self.flow_members: list[_I64] = []
        payers = set(int(m) for m in self.rec_member if m >= 0)
        for net in self.flow_network:
            lo, hi = int(self.member_offsets[net]), int(self.member_offsets[net + 1])
            members = np.arange(lo, hi, dtype=np.int64)
            k = min(members.size, int(rng.integers(2, 5)))
            first = [m for m in members if int(m) in payers]
            rest = [int(m) for m in rng.permutation(members) if int(m) not in payers]
            self.flow_members.append(np.array((first + rest)[: max(k, len(first))], dtype=np.int64))

    def _plan_namesakes(self, rng: np.random.Generator, n: int, n_family: int) -> None:
        """Whose namesakes exist: officials (used or not) and network members; some receive family money."""
        used = np.array(sorted(self.used_officials), dtype=np.int64)
        unused = np.setdiff1d(np.arange(len(self.officials.ids)), used)
        n_members = round(0.3 * n)
        n_used = min(used.size, (n - n_members) // 2)
        picked_used = rng.permutation(used)[:n_used]
        picked_unused = rng.permutation(unused)[: n - n_members - n_used]
        self.ns_officials = np.concatenate([picked_used, picked_unused]).astype(np.int64)
        self.ns_members = rng.permutation(len(self.members.ids))[:n_members].astype(np.int64)
        home = np.array([c[0] for c in self.officials.countries], dtype=np.int64)
        plausible = np.flatnonzero(np.isin(home, list(_FAMILY_NAMESAKE_HOMES)))
        eligible = np.setdiff1d(plausible, self.ns_officials)
        self.family_namesakes = rng.permutation(eligible)[: round(0.1 * n_family)].astype(np.int64)

    # -- patterns -------------------------------------------------------------------------------------------
    def add_patterns(self, p: _Patterns) -> None:
        """Keep a kind's patterns (empty kinds too, so counts show zero)."""
        self.patterns.append(p)

    def ordinary_sends(self, rng: np.random.Generator, who: _I64, max_each: int) -> None:
        """Everyday transfers of pattern parties to background receivers (not part of any pattern)."""
        counts = rng.integers(0, max_each + 1, who.size)
        group, _ = _ragged(counts)
        sender = who[group]
        self.extras.append(self.ordinary_rows(rng, sender, self.usual_receivers(rng, sender)))

    def ordinary_receipts(self, rng: np.random.Generator, who: _I64, max_each: int) -> None:
        """Everyday transfers to pattern parties from background senders (not part of any pattern)."""
        counts = rng.integers(0, max_each + 1, who.size)
        group, _ = _ragged(counts)
        receiver = who[group]
        self.extras.append(self.ordinary_rows(rng, self.senders_to(rng, self.res_of(receiver)), receiver))

    def usual_receivers(self, rng: np.random.Generator, sender: _I64) -> _I64:
        """Background receivers where each sender usually sends."""
        prim = self.cust.get("prim", sender).astype(np.int64)
        sec = self.cust.get("sec", sender).astype(np.int64)
        return self.receivers_in(rng, np.where(rng.random(sender.size) < 0.85, prim, sec))

    def ordinary_rows(
        self,
        rng: np.random.Generator,
        sender: _I64,
        receiver: _I64,
        tag: _I64 | None = None,
    ) -> _Block:
        """Everyday-sized transfers between the given parties on random days."""
        n = sender.size
        res = self.res_of(sender)
        currency = _currency_for(rng, res)
        ts = _daytime_ts(rng, rng.integers(0, 365, n), res)
        local = _local_amount(_ordinary_usd(rng, n), currency)
        tags = np.full(n, -1, dtype=np.int64) if tag is None else tag
        agent = self.agents_for(rng, sender, 0.8)
        return self.rows_block(rng, ts, sender, receiver, local, currency, agent, tags)


# ---------------------------------------------------------------------------------------------------------
# Planted suspicious patterns
# ---------------------------------------------------------------------------------------------------------
def _structuring(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """3-6 transfers in [0.82T, 0.985T) within 1-6 days from one sender (often at several agents)."""
    threshold = np.where(rng.permutation(n) % 2 == 0, THRESHOLDS_USD[0], THRESHOLDS_USD[1])
    res = _HOST[rng.choice(_HOST.size, n, p=[0.30, 0.20, 0.35, 0.15])]
    culture = _draw_per_country(rng, res, _RESIDENT_CULTURE_P)
    sender = b.new_people(rng, res, culture)
    n_recv = rng.integers(1, 4, n)
    rgroup, _ = _ragged(n_recv)
    receivers = b.new_people(rng, b.cust.get("prim", sender)[rgroup].astype(np.int64), culture[rgroup])
    k = rng.integers(3, 7, n)
    group, within = _ragged(k)
    span = rng.uniform(1.0, 6.0, n)
    start = rng.uniform(1.0, 357.0, n)
    frac = np.where(within == 0, 0.0, np.where(within == k[group] - 1, 1.0, rng.random(group.size)))
    ts = _clip_year((start[group] + frac * span[group]) * _DAY_S)
    pick = np.where(within == 0, 0, rng.integers(0, n_recv[group]))
    receiver = receivers[_group_starts(n_recv)[group] + pick]
    multi = rng.random(n) < 0.7
    country = res[group]
    size = b.agent_offsets[country + 1] - b.agent_offsets[country]
    rank = (rng.random(group.size) * size).astype(np.int64)
    first_rank = rank[_group_starts(k)][group]
    rank = np.where((within == 1) & (rank == first_rank), (first_rank + 1) % size, rank)
    hopping = b.agent_members[b.agent_offsets[country] + rank]
    agent = np.where(multi[group], hopping, b.cust.get("home_agent", sender[group]).astype(np.int64))
    currency = _currency_for(rng, res)[group]
    local = _local_amount(threshold[group] * rng.uniform(0.82, 0.985, group.size), currency)
    rows = b.rows_block(rng, ts, sender[group], receiver, local, currency, agent, group)
    parties, counts = _with_subject(sender, receivers, n_recv)
    b.ordinary_sends(rng, sender, 6)
    return _Patterns(
        STRUCTURING,
        True,
        STRUCTURING,
        ["multi_agent" if m else "single_agent" for m in multi],
        sender,
        receivers[_group_starts(n_recv)],
        parties,
        counts,
        np.full(n, -1, np.int64),
        np.full(n, -1, np.int64),
        threshold,
        rows,
    )


_PERIODS: Final = ("weekly", "fortnightly", "monthly")


def _recurring(b: _Builder, rng: np.random.Generator) -> _Patterns:
    """Regular payments (weekly/fortnightly/monthly, jittered, sometimes one missed) to an official."""
    member = b.rec_member
    n = member.size
    official = b.rec_official
    payee = np.array([b.official_customer[int(o)] for o in official], dtype=np.int64)
    payer = np.array([b.member_customer[int(m)] if m >= 0 else -1 for m in member], dtype=np.int64)
    unlisted = np.flatnonzero(payer < 0)
    if unlisted.size:
        payer[unlisted] = _unlisted_payers(b, rng, b.rec_res[unlisted], official[unlisted])
    res = b.res_of(payer)
    period = rng.choice(3, n, p=[0.40, 0.25, 0.35])
    n_pay = np.where(period == 2, rng.integers(6, 13, n), rng.integers(6, 21, n))
    group, within = _ragged(n_pay)
    step = np.array([7, 14, 0])[period]
    jitter = np.array([1.0, 2.0, 2.0])[period]
    start = rng.integers(3, np.maximum(4, 362 - (n_pay - 1) * step))
    first_month = rng.integers(0, 12 - np.minimum(n_pay, 12) + 1)
    day_of_month = rng.integers(3, 27, n)
    monthly_day = _MONTH_START_DAY[np.minimum(first_month[group] + within, 11)] + day_of_month[group] - 1
    day = np.where(period[group] == 2, monthly_day, start[group] + within * step[group])
    hour = rng.uniform(9.0, 18.0, n)
    seconds = (day + rng.uniform(-1, 1, group.size) * jitter[group]) * _DAY_S + hour[group] * 3600.0
    ts = _clip_year(seconds - _UTC_OFFSET_S[res[group]])
    missed = rng.random(n) < 1 / 3
    drop = rng.integers(1, n_pay - 1)
    keep = ~(missed[group] & (within == drop[group]))
    currency = np.where(rng.random(n) < 0.5, _LOCAL_CURRENCY[res], _USD).astype(np.int8)
    base_local = rng.uniform(50.0, 400.0, n) / _RATE[currency]
    round_base = _round_to(base_local, _ROUND_UNIT_RECURRING[currency])
    is_round = rng.random(n) < 0.3
    local = np.where(
        is_round[group], round_base[group], np.round(base_local[group] * rng.uniform(0.9, 1.1, group.size), 2)
    )
    agent = b.agents_for(rng, payer[group], 0.8)
    rows = b.rows_block(rng, ts, payer[group], payee[group], local, currency[group], agent, group).take(keep)
    b.ordinary_sends(rng, payer, 6)
    b.ordinary_receipts(rng, payee, 3)
    parties, counts = _with_subject(payer, payee, np.ones(n, dtype=np.int64))
    network = np.where(member >= 0, b.members.network[np.maximum(member, 0)], -1)
    return _Patterns(
        RECURRING,
        True,
        RECURRING,
        [_PERIODS[p] for p in period],
        payer,
        payee,
        parties,
        counts,
        official.astype(np.int64),
        network.astype(np.int64),
        np.full(n, np.nan),
        rows,
    )


def _unlisted_payers(b: _Builder, rng: np.random.Generator, res: _I64, official: _I64) -> _I64:
    """New payers on no list, whose family name differs from the official's they pay."""
    culture = _draw_per_country(rng, res, _RESIDENT_CULTURE_P)
    name_id = b.names.customer_names(rng, culture)
    avoid = b.officials.surname[official]
    for _ in range(50):
        clash = (b.names.surname_of(name_id) == avoid) & (avoid >= 0)
        if not clash.any():
            break
        name_id[clash] = b.names.customer_names(rng, culture[clash])
    return b.new_people(rng, res, culture, name_id=name_id)


def _network_flows(b: _Builder, rng: np.random.Generator) -> _Patterns:
    """A few transfers between members of the same network (context for the link step)."""
    members = b.flow_members
    n = len(members)
    customers = [np.array([b.member_customer[int(m)] for m in ms], dtype=np.int64) for ms in members]
    size = np.array([c.size for c in customers], dtype=np.int64)
    flat = np.concatenate(customers) if customers else np.zeros(0, np.int64)
    n_txn = rng.integers(2, 7, n)
    group, within = _ragged(n_txn)
    s_pick = np.where(within == 0, 0, rng.integers(0, size[group]))
    r_pick = (s_pick + rng.integers(1, np.maximum(2, size[group]))) % size[group]
    offsets = _group_starts(size)
    sender, receiver = flat[offsets[group] + s_pick], flat[offsets[group] + r_pick]
    res = b.res_of(sender)
    currency = _currency_for(rng, res)
    usd = np.clip(np.exp(rng.normal(np.log(400.0), 0.6, group.size)), 50.0, _MAX_ORDINARY_USD)
    ts = _daytime_ts(rng, rng.integers(0, 365, group.size), res)
    rows = b.rows_block(
        rng,
        ts,
        sender,
        receiver,
        _local_amount(usd, currency),
        currency,
        b.agents_for(rng, sender, 0.7),
        group,
    )
    first = _group_starts(n_txn)
    return _Patterns(
        NETWORK_FLOW,
        True,
        None,
        ["intra_network"] * n,
        sender[first],
        receiver[first],
        flat,
        size,
        np.full(n, -1, np.int64),
        b.flow_network.astype(np.int64),
        np.full(n, np.nan),
        rows,
    )


# ---------------------------------------------------------------------------------------------------------
# Benign look-alikes
# ---------------------------------------------------------------------------------------------------------
def _family(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """Migrant workers sending a stable 100-400 USD home every month for 8-12 months."""
    res = _HOST[rng.choice(_HOST.size, n, p=[0.40, 0.20, 0.25, 0.15])]
    culture = _draw_per_country(rng, res, _FAMILY_CULTURE_P)
    recv_res = _CULTURE_HOME[culture]
    namesake = b.family_namesakes[:n]
    k = namesake.size
    variant = ["standard"] * n
    slots = np.zeros(0, dtype=np.int64)
    if k:
        slots = rng.permutation(n)[:k]
        home = np.array([b.officials.countries[int(o)][0] for o in namesake], dtype=np.int64)
        recv_res[slots] = [
            homes[int(rng.integers(len(homes)))] for homes in (_FAMILY_NAMESAKE_HOMES[int(h)] for h in home)
        ]
        culture[slots] = b.officials.culture[namesake]
        for s in slots:
            variant[int(s)] = "namesake_receiver"
    sender = b.new_people(rng, res, culture)
    plain = np.setdiff1d(np.arange(n), slots)
    receiver = np.empty(n, dtype=np.int64)
    receiver[plain] = b.new_people(rng, recv_res[plain], culture[plain])
    if k:
        receiver[slots] = b.namesake_customers(rng, b.officials, namesake, recv_res[slots], "official")
    months = rng.integers(8, 13, n)
    group, _, ts = _monthly_schedule(rng, months, 3.0, res, (9.0, 20.0))
    currency = _currency_for(rng, res)
    base = rng.uniform(100.0, 400.0, n) / _RATE[currency]
    exact = rng.random(n) < 0.4
    local = np.where(
        exact[group],
        _round_to(base, _ROUND_UNIT[currency])[group],
        np.round(base[group] * rng.uniform(0.95, 1.05, group.size), 2),
    )
    rows = b.rows_block(
        rng,
        ts,
        sender[group],
        receiver[group],
        local,
        currency[group],
        b.agents_for(rng, sender[group], 0.9),
        group,
    )
    parties, counts = _with_subject(sender, receiver, np.ones(n, dtype=np.int64))
    return _Patterns(
        FAMILY,
        False,
        None,
        variant,
        sender,
        receiver,
        parties,
        counts,
        np.full(n, -1, np.int64),
        np.full(n, -1, np.int64),
        np.full(n, np.nan),
        rows,
    )


def _relatives(b: _Builder, rng: np.random.Generator) -> _Patterns:
    """A relative abroad, sharing the official's family name, sends 150-500 USD a month."""
    official = b.rel_official
    n = official.size
    payee = np.array([b.official_customer[int(o)] for o in official], dtype=np.int64)
    res = np.empty(n, dtype=np.int64)
    names: list[str] = []
    for j, o in enumerate(official):
        home = set(b.officials.countries[int(o)])
        abroad = [c for c in (US, AE, MY, TH) if c not in home]
        res[j] = abroad[int(rng.integers(len(abroad)))]
        names.append(_relative_name(b, rng, int(o)))
    culture = b.officials.culture[official]
    relative = b.new_people(rng, res, culture, name_id=b.names.add(names))
    months = rng.integers(6, 13, n)
    group, _, ts = _monthly_schedule(rng, months, 3.0, res, (9.0, 20.0))
    currency = _currency_for(rng, res)
    base = rng.uniform(150.0, 500.0, n) / _RATE[currency]
    local = np.round(base[group] * rng.uniform(0.95, 1.05, group.size), 2)
    rows = b.rows_block(
        rng,
        ts,
        relative[group],
        payee[group],
        local,
        currency[group],
        b.agents_for(rng, relative[group], 0.9),
        group,
    )
    parties, counts = _with_subject(relative, payee, np.ones(n, dtype=np.int64))
    return _Patterns(
        RELATIVE,
        False,
        None,
        ["monthly"] * n,
        relative,
        payee,
        parties,
        counts,
        official.astype(np.int64),
        np.full(n, -1, np.int64),
        np.full(n, np.nan),
        rows,
    )


def _relative_name(b: _Builder, rng: np.random.Generator, official: int) -> str:
    """The official's family name with other given names, spelled the way the counter types it."""
    tokens = b.officials.tokens[official].copy()
    culture = b.names.cultures[int(b.officials.culture[official])]
    scheme = culture.schemes[int(b.officials.scheme[official])]
    for j, slot in enumerate(scheme.slots):
        if j != scheme.surname_slot and slot.size > 1:
            options = slot[slot != tokens[j]]
            tokens[j] = options[int(rng.integers(options.size))]
    title = " ".join(_words(b.names.tok, tokens))
    return title.upper() if rng.random() < 0.4 else title


def _shops(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """Shops paid 5-60 USD by 30-200 different local customers over the year."""
    res = rng.choice(np.array([TH, MY, KH, VN, PH]), n, p=[0.35, 0.20, 0.15, 0.15, 0.15])
    culture = np.array([_COUNTRY_CULTURE[int(c)] for c in res], dtype=np.int64)
    shop = b.new_people(rng, res, culture, name_id=b.names.add(_business_names(rng, res, _SHOP_WORDS)))
    k = rng.integers(30, 201, n)
    group, _ = _ragged(k)
    sender = np.concatenate(
        [np.zeros(0, np.int64)] + [b.residents(rng, int(c), int(m)) for c, m in zip(res, k, strict=True)]
    )
    s_res = b.res_of(sender)
    currency = _currency_for(rng, s_res)
    local = _local_amount(rng.uniform(5.0, 60.0, group.size), currency)
    ts = _daytime_ts(rng, rng.integers(0, 365, group.size), s_res)
    rows = b.rows_block(rng, ts, sender, shop[group], local, currency, b.agents_for(rng, sender, 0.9), group)
    others, other_counts = _unique_parties(group, sender, n)
    parties, counts = _with_subject(shop, others, other_counts)
    return _Patterns(
        SHOP,
        False,
        None,
        ["small_payments"] * n,
        shop,
        np.full(n, -1, np.int64),
        parties,
        counts,
        np.full(n, -1, np.int64),
        np.full(n, -1, np.int64),
        np.full(n, np.nan),
        rows,
    )


def _business_names(
    rng: np.random.Generator, res: _I64, words: Sequence[str] | Mapping[int, Sequence[str]]
) -> list[str]:
    """Business names such as "Mae Sot Golden Mini Mart" (upper case for some)."""
    out = []
    for c in res:
        places = _PLACES[int(c)]
        pool = words[int(c)] if isinstance(words, Mapping) else words
        name = (
            f"{places[int(rng.integers(len(places)))]} {_BUSINESS_ADJ[int(rng.integers(len(_BUSINESS_ADJ)))]}"
            f" {pool[int(rng.integers(len(pool)))]}"
        )
        out.append(name.upper() if rng.random() < 0.4 else name)
    return out


def _payrolls(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """Employers paying 10-50 workers similar wages (200-600 USD) on the same day every month."""
    res = rng.choice(np.array([TH, MY, AE]), n, p=[0.5, 0.3, 0.2])
    culture = np.array([_COUNTRY_CULTURE[int(c)] for c in res], dtype=np.int64)
    names = b.names.add(_business_names(rng, res, _EMPLOYER_WORDS))
    employer = b.new_people(rng, res, culture, name_id=names)
    n_workers = rng.integers(10, 51, n)
    wgroup, _ = _ragged(n_workers)
    workers = b.new_people(rng, res[wgroup], _draw_per_country(rng, res[wgroup], _MIGRANT_CULTURE_P))
    first_month = rng.integers(0, 6, n)
    months = 12 - first_month
    pgroup, month = _ragged(months[wgroup])  # one row per worker and month
    emp = wgroup[pgroup]
    day_of_month = rng.integers(1, 29, n)
    hour = rng.uniform(9.0, 16.0, (n, 12))
    day = _MONTH_START_DAY[first_month[emp] + month] + day_of_month[emp] - 1
    seconds = day * _DAY_S + hour[emp, month] * 3600.0 + rng.uniform(0, 1800, pgroup.size)
    ts = _clip_year(seconds - _UTC_OFFSET_S[res[emp]])
    currency = np.where(rng.random(n) < 0.6, _LOCAL_CURRENCY[res], _USD).astype(np.int8)
    wage = np.clip(rng.uniform(250.0, 500.0, n)[wgroup] * rng.uniform(0.85, 1.15, wgroup.size), 200.0, 600.0)
    usd = wage[pgroup] * rng.uniform(0.98, 1.02, pgroup.size)
    local = _local_amount(usd, currency[emp])
    agent = b.cust.get("home_agent", employer[emp]).astype(np.int64)
    rows = b.rows_block(rng, ts, employer[emp], workers[pgroup], local, currency[emp], agent, emp)
    parties, counts = _with_subject(employer, workers, n_workers)
    return _Patterns(
        PAYROLL,
        False,
        None,
        ["monthly"] * n,
        employer,
        np.full(n, -1, np.int64),
        parties,
        counts,
        np.full(n, -1, np.int64),
        np.full(n, -1, np.int64),
        np.full(n, np.nan),
        rows,
    )


def _near_threshold(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """Traders with 2-6 transfers in [0.81T, 0.985T) over the year, at least 10 days apart."""
    res = rng.choice(np.array([TH, MY, US, AE, VN, PH]), n, p=[0.25, 0.15, 0.25, 0.15, 0.10, 0.10])
    culture = _draw_per_country(rng, res, _RESIDENT_CULTURE_P)
    trader = b.new_people(rng, res, culture)
    threshold = np.where(rng.random(n) < 0.6, THRESHOLDS_USD[0], THRESHOLDS_USD[1])
    n_recv = rng.integers(1, 4, n)
    rgroup, _ = _ragged(n_recv)
    shift = rng.integers(1, _N_COUNTRIES, rgroup.size)
    supplier_res = (res[rgroup] + shift) % _N_COUNTRIES
    suppliers = b.new_people(
        rng,
        supplier_res,
        np.array([_COUNTRY_CULTURE.get(int(c), E_VIET) for c in supplier_res], np.int64),
        name_id=b.names.add(_business_names(rng, supplier_res, _SUPPLIER_WORDS)),
    )
    k = rng.integers(2, 7, n)
    group, within = _ragged(k)
    gap = np.where(within == 0, 0.0, 10.0 + np.minimum(rng.exponential(40.0, group.size), 110.0))
    start = rng.uniform(1.0, 60.0, n)
    day = start[group] + _cumsum_in_groups(gap, k)
    keep = day <= 362.0
    ts = _clip_year(day * _DAY_S + rng.uniform(8.0, 18.0, group.size) * 3600.0 - _UTC_OFFSET_S[res[group]])
    pick = np.where(within == 0, 0, rng.integers(0, n_recv[group]))
    receiver = suppliers[_group_starts(n_recv)[group] + pick]
    currency = _currency_for(rng, res)[group]
    local = _local_amount(threshold[group] * rng.uniform(0.81, 0.985, group.size), currency)
    rows = b.rows_block(
        rng, ts, trader[group], receiver, local, currency, b.agents_for(rng, trader[group], 0.7), group
    ).take(keep)
    b.ordinary_sends(rng, trader, 6)
    parties, counts = _with_subject(trader, suppliers, n_recv)
    return _Patterns(
        NEAR_THRESHOLD,
        False,
        None,
        ["spaced"] * n,
        trader,
        suppliers[_group_starts(n_recv)],
        parties,
        counts,
        np.full(n, -1, np.int64),
        np.full(n, -1, np.int64),
        threshold,
        rows,
    )


def _cumsum_in_groups(values: _F64, counts: _I64) -> _F64:
    """Running sums restarted at each group."""
    total = np.cumsum(values)
    starts = _group_starts(counts)
    before = np.repeat(total[starts] - values[starts], counts)
    return total - before


def _namesakes(b: _Builder, rng: np.random.Generator) -> _Patterns:
    """Ordinary customers who share a name with an official or a network member (not the same person)."""
    parts = []
    for persons, which, kind in (
        (b.officials, b.ns_officials, "official"),
        (b.members, b.ns_members, "network"),
    ):
        res = np.empty(which.size, dtype=np.int64)
        for k, j in enumerate(which):
            listed = set(persons.countries[int(j)])
            home = int(_CULTURE_HOME[persons.culture[int(j)]])
            options = [c for c in _NAMESAKE_HOMES.get(home, ()) if c not in listed]
            options = options or [c for c in range(_N_COUNTRIES) if c not in listed]
            res[k] = options[int(rng.integers(len(options)))]
        parts.append((b.namesake_customers(rng, persons, which, res, kind), kind))
    who = np.concatenate([p[0] for p in parts]).astype(np.int64)
    variant = [kind for index, kind in parts for _ in range(index.size)]
    n = who.size
    count = rng.integers(3, 11, n)
    group, _ = _ragged(count)
    person = who[group]
    sends = np.isin(b.res_of(person), _HOST) & (rng.random(group.size) < 0.8)
    other = np.where(sends, b.usual_receivers(rng, person), b.senders_to(rng, b.res_of(person)))
    sender, receiver = np.where(sends, person, other), np.where(sends, other, person)
    rows = b.ordinary_rows(rng, sender, receiver, tag=group)
    others, other_counts = _unique_parties(group, other, n)
    parties, counts = _with_subject(who, others, other_counts)
    return _Patterns(
        NAMESAKE,
        False,
        None,
        variant,
        who,
        np.full(n, -1, np.int64),
        parties,
        counts,
        np.full(n, -1, np.int64),
        np.full(n, -1, np.int64),
        np.full(n, np.nan),
        rows,
    )


# ---------------------------------------------------------------------------------------------------------
# Background traffic and bad rows
# ---------------------------------------------------------------------------------------------------------
def _background_rows(
    w: _World | _Builder,
    rng: np.random.Generator,
    n: int,
    cols: Mapping[str, np.ndarray],
) -> _Block:
    """Ordinary transfers: skewed activity, migrant corridors home, log-normal amounts (median ~150 USD)."""
    pool = w.sender_pool
    sender = pool[(pool.size * rng.random(n) ** 1.3).astype(np.int64)]
    dest = np.where(
        rng.random(n) < np.where(cols["prim"][sender] != cols["res"][sender], 0.9, 0.8),
        cols["prim"][sender],
        cols["sec"][sender],
    ).astype(np.int64)
    receiver = _pick_in_groups(rng, w.recv_members, w.recv_offsets, dest, 1.2)
    clash = receiver == sender
    receiver[clash] = _pick_in_groups(rng, w.recv_members, w.recv_offsets, dest[clash], 1.0)
    res = cols["res"][sender].astype(np.int64)
    ts = _daytime_ts(rng, rng.integers(0, 365, n), res)
    usd = np.clip(np.exp(rng.normal(np.log(150.0), 0.9, n)), 2.0, 25_000.0)
    currency = _currency_for(rng, res)
    local = _local_amount(usd, currency)
    local = np.where(rng.random(n) < 0.3, _round_to(local, _ROUND_UNIT[currency]), local)
    home = cols["home_agent"][sender].astype(np.int64)
    other = _pick_in_groups(rng, w.agent_members, w.agent_offsets, res)
    agent = np.where(rng.random(n) < 0.8, home, other)
    return _Block(
        ts=ts,
        sender=sender,
        receiver=receiver,
        amount=local,
        amount_usd=_usd_amount(local, currency),
        currency=currency,
        agent=agent,
        s_fmt=_phone_formats(rng, cols["phone"][sender], cols["phone_req"][sender]),
        r_fmt=_phone_formats(rng, cols["phone"][receiver], cols["phone_req"][receiver]),
        tag=np.full(n, -1, np.int64),
        txn_num=np.zeros(n, np.int64),
        defect=np.zeros(n, np.int8),
    )


def _bad_rows(b: _Builder, n: int, cols: Mapping[str, np.ndarray]) -> tuple[_Block, _B, dict[str, int]]:
    """Rows a reader must quarantine, a mix of every reason; also which ones must copy an earlier txn_id."""
    rng = _rng(b.seed, _S_BAD)
    block = _background_rows(b, rng, n, cols)
    reason = rng.permutation(np.arange(n) % len(BAD_REASONS))
    ids = reason == 0
    block.defect[ids] = rng.integers(1, 7, int(ids.sum()))
    nonpositive = reason == 1
    zero = nonpositive & (rng.random(n) < 0.5)
    block.amount = np.where(zero, 0.0, np.where(nonpositive, -np.abs(block.amount), block.amount))
    block.amount_usd = np.where(zero, 0.0, np.where(nonpositive, -np.abs(block.amount_usd), block.amount_usd))
    nan = reason == 2
    block.amount[nan] = np.nan
    block.amount_usd[nan] = np.nan
    old = reason == 3
    block.ts[old] = -_YEAR_START_S + rng.integers(0, _YEAR_S, int(old.sum()))
    counts = {r: int((reason == i).sum()) for i, r in enumerate(BAD_REASONS)}
    return block, reason == 4, counts


def _bad_row_count(rows: int, bad_fraction: float) -> int:
    """How many bad rows: the fraction, at least 5 from 1,000 rows on, none when the fraction is 0."""
    if bad_fraction <= 0:
        return 0
    n = round(rows * bad_fraction)
    return max(5, n) if rows >= 1000 else n


# ---------------------------------------------------------------------------------------------------------
# Building and laying out
# ---------------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------------
# Issue 5: the one planted pattern no rule covers (found by the anomaly model, typology `anomaly`)
# ---------------------------------------------------------------------------------------------------------
def _corridor_bursts(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """A burst of unusual corridor activity: a customer living in an origin country (KH, MM, LA, VN)
    suddenly sends 5-8 transfers of 3,300-4,700 USD within two to four weeks to one or two new
    receivers in a far host country (US or AE), at night local time, always at its own agent.

    No rule covers it, by construction: amounts sit above the 3,000 USD line and below the 10,000 USD
    band, sends are at least 2.2 days apart (no three within 3 days, no two adding up to 10,000), the
    times are irregular, one agent, one or two receivers, no list links, no round amounts. Its parties
    also make a few everyday sends, so the burst stands out against their own history too.
    """
    res = rng.choice(np.array([KH, MM, LA, VN]), n)
    sender = b.new_people(rng, res, _draw_per_country(rng, res, _RESIDENT_CULTURE_P))
    n_recv = rng.integers(1, 3, n)
    rgroup, _ = _ragged(n_recv)
    recv_res = rng.choice(np.array([US, AE]), rgroup.size)
    receivers = b.new_people(rng, recv_res, _draw_per_country(rng, recv_res, _RESIDENT_CULTURE_P))
    k = rng.integers(5, 9, n)
    group, within = _ragged(k)
    gap = np.where(within == 0, 0.0, rng.uniform(2.2, 4.0, group.size))
    day = rng.uniform(5.0, 330.0, n)[group] + _cumsum_in_groups(gap, k)
    keep = day <= 362.0
    night = rng.uniform(22.0, 29.0, group.size)  # 22:00 to 05:00 local time
    ts = _clip_year(np.floor(day) * _DAY_S + night * 3600.0 - _UTC_OFFSET_S[res[group]])
    pick = np.where(within == 0, 0, rng.integers(0, n_recv[group]))
    receiver = receivers[_group_starts(n_recv)[group] + pick]
    currency = _currency_for(rng, res)[group]
    local = _local_amount(np.round(rng.uniform(3_300.0, 4_700.0, group.size), 2) + 0.37, currency)
    agent = b.agents_for(rng, sender[group], 1.0)
    rows = b.rows_block(rng, ts, sender[group], receiver, local, currency, agent, group).take(keep)
    b.ordinary_sends(rng, sender, 4)
    parties, counts = _with_subject(sender, receivers, n_recv)
    return _Patterns(
        CORRIDOR_BURST,
        True,
        "anomaly",
        ["night_burst_to_far_host"] * n,
        sender,
        receivers[_group_starts(n_recv)],
        parties,
        counts,
        np.full(n, -1, np.int64),
        np.full(n, -1, np.int64),
        np.full(n, np.nan),
        rows,
    )


# ---------------------------------------------------------------------------------------------------------
# Rule-catalogue patterns (issue 3): EUR structuring, smurfing, fan-out, shared phone, wage pooling, agent
# hopping, official fan-in, and recurring payments to officials by payers taking turns or via a go-between.
# Each builder draws from its own stream and only adds parties and rows; none changes another pattern.
# ---------------------------------------------------------------------------------------------------------
SMURFING: Final = "smurfing"
FAN_OUT: Final = "fan_out_splitting"
SHARED_PHONE: Final = "shared_phone"
WAGE_POOLING: Final = "wage_pooling"
AGENT_HOPPING: Final = "agent_hopping"
OFFICIAL_FAN_IN: Final = "official_fan_in"
STRUCTURING_EUR: Final = "structuring_eur"
RECURRING_SHARED: Final = "recurring_rotating_or_via"
CATALOGUE_KINDS: Final = (
    STRUCTURING_EUR,
    SMURFING,
    FAN_OUT,
    SHARED_PHONE,
    WAGE_POOLING,
    AGENT_HOPPING,
    OFFICIAL_FAN_IN,
    RECURRING_SHARED,
    "one_off_to_official",
)
EUR_THRESHOLDS: Final = (10000.0, 15000.0)


def _catalogue_builders(b: _Builder, counts: Mapping[str, int]) -> list[Callable[[np.random.Generator], _Patterns]]:
    """Builders of the rule-catalogue patterns, sized from the (possibly shrunk) structuring count."""
    n = counts[STRUCTURING] // 5  # 0 in tiny worlds: every builder then returns no patterns
    return [
        lambda r: _eur_structuring(b, r, n),
        lambda r: _smurfing(b, r, n),
        lambda r: _fan_out(b, r, n),
        lambda r: _shared_phone(b, r, n),
        lambda r: _wage_pooling(b, r, n),
        lambda r: _agent_hopping(b, r, n),
        lambda r: _official_fan_in(b, r, n // 2),
        lambda r: _recurring_shared(b, r, n // 2),
        lambda r: _one_off_to_official(b, r, n // 2),
    ]


def _no_patterns(kind: str, typology: str) -> _Patterns:
    """A kind with no patterns (worlds too small to hold any)."""
    empty = np.zeros(0, np.int64)
    return _Patterns(kind, True, typology, [], empty, empty, empty, empty, empty, empty, np.zeros(0), _Block.empty(0))


def _hosts(b: _Builder, rng: np.random.Generator, n: int) -> tuple[_I64, _I64]:
    """Residence and culture of n new people in host countries."""
    res = _HOST[rng.choice(_HOST.size, n, p=[0.35, 0.2, 0.3, 0.15])]
    return res, _draw_per_country(rng, res, _RESIDENT_CULTURE_P)


def _distinct_agents(b: _Builder, rng: np.random.Generator, country: _I64, group: _I64, within: _I64) -> _I64:
    """An agent per row in the row's country, a different one for each row of a pattern (while any are left)."""
    size = b.agent_offsets[country + 1] - b.agent_offsets[country]
    start = rng.random(int(group.max(initial=-1)) + 1)[group]
    rank = ((start * size).astype(np.int64) + within) % size
    return b.agent_members[b.agent_offsets[country] + rank]


def _burst_ts(rng: np.random.Generator, k: _I64, span_days: _F64, res: _I64) -> tuple[_I64, _I64, _I64]:
    """k[i] daytime timestamps of pattern i spread over span_days[i]; returns (group, within, ts)."""
    group, within = _ragged(k)
    start = rng.uniform(2.0, 350.0, k.size)
    day = start[group] + rng.random(group.size) * span_days[group]
    hour = rng.uniform(8.0, 19.0, group.size)
    return group, within, _clip_year(day * _DAY_S + hour * 3600.0 - _UTC_OFFSET_S[res[group]])


def _eur_structuring(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """3-5 EUR transfers in [0.82T, 0.985T) of T = 10,000 or 15,000 EUR within 1-6 days, at several agents."""
    if n == 0:
        return _no_patterns(STRUCTURING_EUR, STRUCTURING)
    threshold = np.array(EUR_THRESHOLDS)[rng.integers(0, 2, n)]
    res, culture = _hosts(b, rng, n)
    sender = b.new_people(rng, res, culture)
    receiver = b.new_people(rng, b.cust.get("prim", sender).astype(np.int64), culture)
    k = rng.integers(3, 6, n)
    group, within, ts = _burst_ts(rng, k, rng.uniform(1.0, 6.0, n), res)
    local = np.round(threshold[group] * rng.uniform(0.82, 0.985, group.size), 2)
    currency = np.full(group.size, _EUR, dtype=np.int8)
    agent = _distinct_agents(b, rng, res[group], group, within)
    rows = b.rows_block(rng, ts, sender[group], receiver[group], local, currency, agent, group)
    b.ordinary_sends(rng, sender, 4)
    parties, pcounts = _with_subject(sender, receiver, np.ones(n, dtype=np.int64))
    return _Patterns(
        STRUCTURING_EUR, True, STRUCTURING, ["eur"] * n, sender, receiver, parties, pcounts,
        np.full(n, -1, np.int64), np.full(n, -1, np.int64), threshold * USD_PER_UNIT["EUR"], rows,
    )  # fmt: skip


def _smurfing(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """5-9 smurfs (new customers) each send 500-1,400 USD to one collector within 1-6 days."""
    if n == 0:
        return _no_patterns(SMURFING, "smurfing")
    res, culture = _hosts(b, rng, n)
    collector = b.new_people(rng, res, culture)
    k = rng.integers(5, 10, n)
    group, _within, ts = _burst_ts(rng, k, rng.uniform(1.0, 6.0, n), res)
    smurfs = b.new_people(rng, res[group], culture[group])
    currency = np.full(group.size, _USD, dtype=np.int8)
    local = np.round(rng.uniform(500.0, 1400.0, group.size), 2)
    agent = b.agents_for(rng, smurfs, 0.5)
    rows = b.rows_block(rng, ts, smurfs, collector[group], local, currency, agent, group)
    b.ordinary_receipts(rng, collector, 3)
    parties, pcounts = _with_subject(collector, smurfs, k)
    return _Patterns(
        SMURFING, True, "smurfing", ["fan_in"] * n, collector, np.full(n, -1, np.int64), parties, pcounts,
        np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.full(n, 3000.0), rows,
    )  # fmt: skip


def _fan_out(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """One sender splits 4,000-11,600 USD over 5-8 new receivers, 800-1,450 USD each, within 1-4 days."""
    if n == 0:
        return _no_patterns(FAN_OUT, "fan_out_splitting")
    res, culture = _hosts(b, rng, n)
    sender = b.new_people(rng, res, culture)
    k = rng.integers(5, 9, n)
    group, _within, ts = _burst_ts(rng, k, rng.uniform(1.0, 4.0, n), res)
    receivers = b.new_people(rng, b.cust.get("prim", sender[group]).astype(np.int64), culture[group])
    currency = np.full(group.size, _USD, dtype=np.int8)
    local = np.round(rng.uniform(800.0, 1450.0, group.size), 2)
    agent = b.agents_for(rng, sender[group], 0.6)
    rows = b.rows_block(rng, ts, sender[group], receivers, local, currency, agent, group)
    b.ordinary_sends(rng, sender, 4)
    parties, pcounts = _with_subject(sender, receivers, k)
    return _Patterns(
        FAN_OUT, True, "fan_out_splitting", ["split"] * n, sender, np.full(n, -1, np.int64), parties, pcounts,
        np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.full(n, 3000.0), rows,
    )  # fmt: skip


def _shared_phone(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """A controller's phone on 3-6 victims' customer records; each victim sends 1-3 times within 25 days."""
    if n == 0:
        return _no_patterns(SHARED_PHONE, "shared_identifiers")
    res, culture = _hosts(b, rng, n)
    controller = b.new_people(rng, res, culture, phone_required=True)
    v = rng.integers(3, 7, n)
    vgroup, _ = _ragged(v)
    v_res, v_cul = res[vgroup], _draw_per_country(rng, res[vgroup], _MIGRANT_CULTURE_P)
    prim, sec = _corridors(rng, v_res, v_cul)
    victims = b.cust.add(
        res=v_res,
        culture=v_cul,
        name_id=b.names.customer_names(rng, v_cul),
        phone=b.cust.get("phone", controller)[vgroup],
        phone_ctry=b.cust.get("phone_ctry", controller)[vgroup],
        phone_req=np.ones(vgroup.size, dtype=bool),
        home_agent=b.cust.get("home_agent", controller)[vgroup],
        prim=prim,
        sec=sec,
    )
    sends = rng.integers(1, 4, vgroup.size)
    row_victim = np.repeat(np.arange(vgroup.size), sends)
    group = vgroup[row_victim]
    start = rng.uniform(2.0, 335.0, n)
    day = start[group] + rng.uniform(0.0, 25.0, group.size)
    ts = _clip_year(day * _DAY_S + rng.uniform(9.0, 18.0, group.size) * 3600.0 - _UTC_OFFSET_S[res[group]])
    boss = b.new_people(rng, b.cust.get("prim", controller).astype(np.int64), culture)
    currency = np.full(group.size, _USD, dtype=np.int8)
    local = np.round(rng.uniform(100.0, 450.0, group.size), 2)
    agent = b.cust.get("home_agent", controller)[group].astype(np.int64)
    rows = b.rows_block(rng, ts, victims[row_victim], boss[group], local, currency, agent, group)
    parties, pcounts = _with_subject(
        victims[_group_starts(v)],
        np.concatenate(
            [
                np.concatenate(
                    [victims[_group_starts(v)[i] + 1 : _group_starts(v)[i] + v[i]], [controller[i], boss[i]]]
                )
                for i in range(n)
            ]
        ).astype(np.int64),
        v + 1,
    )
    return _Patterns(
        SHARED_PHONE, True, "shared_identifiers", ["controller_phone"] * n, victims[_group_starts(v)], boss,
        parties, pcounts, np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.full(n, np.nan), rows,
    )  # fmt: skip


def _wage_pooling(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """3-6 employers pay one account 250-600 USD within 1-12 days; 90-100% of each goes on within 2-40 h."""
    if n == 0:
        return _no_patterns(WAGE_POOLING, "wage_pooling")
    res, culture = _hosts(b, rng, n)
    account = b.new_people(rng, res, culture)
    controller = b.new_people(rng, b.cust.get("prim", account).astype(np.int64), culture)
    k = rng.integers(3, 7, n)
    group, _, ts_in = _burst_ts(rng, k, rng.uniform(1.0, 12.0, n), res)
    payers = b.new_people(rng, res[group], _draw_per_country(rng, res[group], _RESIDENT_CULTURE_P))
    currency = np.full(group.size, _USD, dtype=np.int8)
    wage = np.round(rng.uniform(250.0, 600.0, group.size), 2)
    ts_out = _clip_year(ts_in + rng.uniform(2.0, 40.0, group.size) * 3600.0)
    out = np.round(wage * rng.uniform(0.9, 1.0, group.size), 2)
    rows = _Block.concat([
        b.rows_block(rng, ts_in, payers, account[group], wage, currency, b.agents_for(rng, payers, 0.8), group),
        b.rows_block(rng, ts_out, account[group], controller[group], out, currency,
                     b.agents_for(rng, account[group], 0.8), group),
    ])  # fmt: skip
    parties, pcounts = _with_subject(
        account, np.concatenate([np.concatenate([payers[group == i], [controller[i]]]) for i in range(n)]), k + 1
    )
    return _Patterns(
        WAGE_POOLING, True, "wage_pooling", ["pool_and_forward"] * n, account, controller, parties, pcounts,
        np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.full(n, np.nan), rows,
    )  # fmt: skip


def _agent_hopping(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """4-7 sends of 600-1,400 USD within 10-25 days, each at a different agent of the sender's country."""
    if n == 0:
        return _no_patterns(AGENT_HOPPING, "agent_hopping")
    res, culture = _hosts(b, rng, n)
    sender = b.new_people(rng, res, culture)
    receiver = b.new_people(rng, b.cust.get("prim", sender).astype(np.int64), culture)
    k = rng.integers(4, 8, n)
    group, within, ts = _burst_ts(rng, k, rng.uniform(10.0, 25.0, n), res)
    currency = np.full(group.size, _USD, dtype=np.int8)
    local = np.round(rng.uniform(600.0, 1400.0, group.size), 2)
    agent = _distinct_agents(b, rng, res[group], group, within)
    rows = b.rows_block(rng, ts, sender[group], receiver[group], local, currency, agent, group)
    parties, pcounts = _with_subject(sender, receiver, np.ones(n, dtype=np.int64))
    return _Patterns(
        AGENT_HOPPING, True, "agent_hopping", ["many_agents"] * n, sender, receiver, parties, pcounts,
        np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.full(n, np.nan), rows,
    )  # fmt: skip


def _fresh_members(b: _Builder, rng: np.random.Generator, k: int) -> list[list[int]]:
    """Groups of k list members of one network that have no customer yet (as many networks as allow)."""
    groups = []
    for net in rng.permutation(b.n_networks):
        lo, hi = int(b.member_offsets[net]), int(b.member_offsets[net + 1])
        free = [m for m in range(lo, hi) if m not in b.member_customer]
        if len(free) >= k:
            groups.append(free[:k])
    return groups


def _fresh_official(b: _Builder, rng: np.random.Generator, country: int) -> int:
    """An official who takes part in no other pattern, living in (or next to) `country`."""
    return b._take_official(rng, b._pools, b.used_officials, country, -1)


def _official_fan_in(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """An official paid 80-500 USD by 3-5 payers within 60 days, one of them a listed network member."""
    members = [g[0] for g in _fresh_members(b, rng, 1)][:n]
    n = len(members)
    if n == 0:
        return _no_patterns(OFFICIAL_FAN_IN, "official_fan_in")
    m_res = np.array([b.members.countries[m][0] for m in members], dtype=np.int64)
    officials = np.array([_fresh_official(b, rng, int(c)) for c in m_res], dtype=np.int64)
    b.member_customer.update(b.list_customers(rng, b.members, np.array(members, dtype=np.int64), "network"))
    b.official_customer.update(b.list_customers(rng, b.officials, officials, "official"))
    payee = np.array([b.official_customer[int(o)] for o in officials], dtype=np.int64)
    member_cust = np.array([b.member_customer[m] for m in members], dtype=np.int64)
    others = rng.integers(2, 5, n)
    ogroup, _ = _ragged(others)
    extra = b.new_people(rng, m_res[ogroup], _draw_per_country(rng, m_res[ogroup], _RESIDENT_CULTURE_P))
    payers = np.concatenate([np.concatenate([[member_cust[i]], extra[ogroup == i]]) for i in range(n)]) if n else (
        np.zeros(0, np.int64))  # fmt: skip
    k = others + 1
    group, _, ts = _burst_ts(rng, k, np.full(n, 60.0), m_res)
    currency = np.full(group.size, _USD, dtype=np.int8)
    local = np.round(rng.uniform(80.0, 500.0, group.size), 2)
    rows = b.rows_block(rng, ts, payers.astype(np.int64), payee[group], local, currency,
                        b.agents_for(rng, payers.astype(np.int64), 0.8), group)  # fmt: skip
    parties, pcounts = _with_subject(payee, payers.astype(np.int64), k)
    network = np.array([b.members.network[m] for m in members], dtype=np.int64)
    return _Patterns(
        OFFICIAL_FAN_IN, True, "official_fan_in", ["network_payer"] * n, payee, np.full(n, -1, np.int64), parties,
        pcounts, officials, network, np.full(n, np.nan), rows,
    )  # fmt: skip


def _recurring_shared(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """Recurring payments to an official that no single payer->official pair shows: 2-3 members of one
    network taking turns (weekly or fortnightly), or one payer whose payments an intermediary forwards
    within 3-40 hours (weekly, fortnightly or monthly)."""
    n_rot = n // 2
    rot_groups = _fresh_members(b, rng, 2)[:n_rot]
    n_rot = len(rot_groups)
    taken = {m for g in rot_groups for m in g}
    via_members = [m for g in _fresh_members(b, rng, 2) for m in g if m not in taken][: n - n_rot]
    n = n_rot + len(via_members)
    if n == 0:
        return _no_patterns(RECURRING_SHARED, RECURRING)

    all_members = [m for g in rot_groups for m in g] + via_members
    b.member_customer.update(b.list_customers(rng, b.members, np.array(all_members, dtype=np.int64), "network"))
    first = [g[0] for g in rot_groups] + via_members
    res = np.array([b.members.countries[m][0] for m in first], dtype=np.int64)
    officials = np.array([_fresh_official(b, rng, int(c)) for c in res], dtype=np.int64)
    b.official_customer.update(b.list_customers(rng, b.officials, officials, "official"))
    payee = np.array([b.official_customer[int(o)] for o in officials], dtype=np.int64)
    middle = b.new_people(rng, res[n_rot:], _draw_per_country(rng, res[n_rot:], _RESIDENT_CULTURE_P))
    period = np.where(np.arange(n) < n_rot, rng.integers(0, 2, n), rng.integers(0, 3, n))
    k = np.where(period == 2, rng.integers(6, 11, n), rng.integers(8, 15, n))
    group, within = _ragged(k)
    step = np.array([7.0, 14.0, 30.4375])[period]
    start = rng.uniform(3.0, 360.0 - (k - 1) * step)
    day = start[group] + within * step[group] + rng.uniform(-1.5, 1.5, group.size)
    ts = _clip_year(day * _DAY_S + rng.uniform(9.0, 18.0, group.size) * 3600.0 - _UTC_OFFSET_S[res[group]])
    amount = np.round(rng.uniform(80.0, 300.0, n)[group] * rng.uniform(0.95, 1.05, group.size), 2)
    currency = np.full(group.size, _USD, dtype=np.int8)
    rot = group < n_rot
    size = np.array([len(g) for g in rot_groups] + [1] * (n - n_rot), dtype=np.int64)
    member_index = np.array([b.member_customer[m] for m in all_members], dtype=np.int64)
    offsets = _group_starts(size)
    payer = member_index[offsets[group] + within % size[group]]
    via = ~rot
    vg = group[via] - n_rot
    fwd_ts = _clip_year(ts[via] + rng.uniform(3.0, 40.0, vg.size) * 3600.0)
    fwd_amount = np.round(amount[via] * rng.uniform(0.97, 1.0, vg.size), 2)
    rows = _Block.concat([
        b.rows_block(rng, ts[rot], payer[rot], payee[group[rot]], amount[rot], currency[rot],
                     b.agents_for(rng, payer[rot], 0.8), group[rot]),
        b.rows_block(rng, ts[via], payer[via], middle[vg], amount[via], currency[via],
                     b.agents_for(rng, payer[via], 0.8), group[via]),
        b.rows_block(rng, fwd_ts, middle[vg], payee[group[via]], fwd_amount, currency[via],
                     b.agents_for(rng, middle[vg], 0.8), group[via]),
    ])  # fmt: skip
    others = [np.array([*member_index[offsets[i] + 1 : offsets[i] + size[i]], payee[i]]) for i in range(n_rot)]
    others += [np.array([middle[i], payee[n_rot + i]]) for i in range(n - n_rot)]
    subject = member_index[offsets]
    parties, pcounts = _with_subject(
        subject, np.concatenate(others).astype(np.int64), np.array([o.size for o in others])
    )
    network = np.array([b.members.network[m] for m in first], dtype=np.int64)
    variant = [
        f"rotating_{_PERIODS[p]}" if i < n_rot else f"via_intermediary_{_PERIODS[p]}" for i, p in enumerate(period)
    ]
    return _Patterns(
        RECURRING_SHARED, True, RECURRING, variant, subject, payee, parties, pcounts, officials, network,
        np.full(n, np.nan), rows,
    )  # fmt: skip


ONE_OFF: Final = "one_off_to_official"


def _one_off_to_official(b: _Builder, rng: np.random.Generator, n: int) -> _Patterns:
    """A network member with small everyday sends (40-120 USD) receives 1,000-3,000 USD from another member of
    its network and 8-60 hours later pays an official it never paid before 800-2,500 USD, once."""
    pairs = _fresh_members(b, rng, 2)[:n]
    n = len(pairs)
    if n == 0:
        return _no_patterns(ONE_OFF, "one_off_payment_to_official")
    members = np.array([m for g in pairs for m in g], dtype=np.int64)
    b.member_customer.update(b.list_customers(rng, b.members, members, "network"))
    payer = np.array([b.member_customer[g[0]] for g in pairs], dtype=np.int64)
    source = np.array([b.member_customer[g[1]] for g in pairs], dtype=np.int64)
    res = np.array([b.members.countries[g[0]][0] for g in pairs], dtype=np.int64)
    officials = np.array([_fresh_official(b, rng, int(c)) for c in res], dtype=np.int64)
    b.official_customer.update(b.list_customers(rng, b.officials, officials, "official"))
    payee = np.array([b.official_customer[int(o)] for o in officials], dtype=np.int64)
    family = b.new_people(
        rng, b.cust.get("prim", payer).astype(np.int64), b.cust.get("culture", payer).astype(np.int64)
    )
    k = rng.integers(4, 9, n)
    group, _ = _ragged(k)
    event_day = rng.uniform(120.0, 350.0, n)
    hist_day = event_day[group] - rng.uniform(5.0, 110.0, group.size)
    hour = rng.uniform(9.0, 18.0, group.size) * 3600.0
    hist_ts = _clip_year(hist_day * _DAY_S + hour - _UTC_OFFSET_S[res[group]])
    usd = np.full(group.size, _USD, dtype=np.int8)
    event_ts = _clip_year(event_day * _DAY_S + 11 * 3600.0 - _UTC_OFFSET_S[res])
    pay_ts = _clip_year(event_ts + rng.uniform(8.0, 60.0, n) * 3600.0)
    one = np.arange(n, dtype=np.int64)
    cur = np.full(n, _USD, dtype=np.int8)
    rows = _Block.concat([
        b.rows_block(rng, hist_ts, payer[group], family[group], np.round(rng.uniform(40.0, 120.0, group.size), 2),
                     usd, b.agents_for(rng, payer[group], 0.9), group),
        b.rows_block(rng, event_ts, source, payer, np.round(rng.uniform(1000.0, 3000.0, n), 2), cur,
                     b.agents_for(rng, source, 0.8), one),
        b.rows_block(rng, pay_ts, payer, payee, np.round(rng.uniform(800.0, 2500.0, n), 2), cur,
                     b.agents_for(rng, payer, 0.8), one),
    ])  # fmt: skip
    others = np.stack([source, payee], axis=1).ravel()
    parties, pcounts = _with_subject(payer, others, np.full(n, 2, dtype=np.int64))
    network = np.array([b.members.network[g[0]] for g in pairs], dtype=np.int64)
    return _Patterns(
        ONE_OFF, True, "one_off_payment_to_official", ["after_network_transfer"] * n, payer, payee, parties,
        pcounts, officials, network, np.full(n, np.nan), rows,
    )  # fmt: skip


def _scaled_counts(rows: int, factor: float) -> dict[str, int]:
    """Pattern counts, shrunk for worlds too small to hold them at half their rows."""
    counts = pattern_counts_for(rows)
    expected = sum(counts[k] * _EXPECTED_ROWS[k] for k in KINDS)
    shrink = min(1.0, 0.5 * rows / expected) * factor
    if shrink >= 1.0:
        return counts
    return {k: int(np.floor(v * shrink)) for k, v in counts.items()}


def _build_world(rows: int, seed: int, bad_fraction: float) -> _World:
    """Build everything but the background rows; retry with fewer patterns if a tiny world overflows."""
    n_bad = _bad_row_count(rows, bad_fraction)
    factor = 1.0
    for _ in range(30):
        built = _try_build(rows, seed, factor, n_bad)
        if built is not None:
            return built
        factor /= 2
    raise ValueError(f"rows={rows} is too small for a world")


def _try_build(rows: int, seed: int, factor: float, n_bad: int) -> _World | None:
    """One attempt at a world; None when the planted rows do not fit in `rows`."""
    counts = _scaled_counts(rows, factor)
    b = _Builder(rows, seed)
    b.build_officials()
    b.build_networks()
    b.plan(counts)
    builders: list[Callable[[np.random.Generator], _Patterns]] = [
        lambda r: _structuring(b, r, counts[STRUCTURING]),
        lambda r: _recurring(b, r),
        lambda r: _network_flows(b, r),
        lambda r: _family(b, r, counts[FAMILY]),
        lambda r: _relatives(b, r),
        lambda r: _shops(b, r, counts[SHOP]),
        lambda r: _payrolls(b, r, counts[PAYROLL]),
        lambda r: _near_threshold(b, r, counts[NEAR_THRESHOLD]),
        lambda r: _namesakes(b, r),
        lambda r: _corridor_bursts(b, r, counts[CORRIDOR_BURST]),
        *_catalogue_builders(b, counts),  # rule-catalogue patterns (issue 3)
    ]
    for i, build in enumerate(builders):
        b.add_patterns(build(_rng(seed, _S_KIND0 + i)))
    extras_rng = _rng(seed, _S_EXTRAS)
    official_customers = np.array(sorted(b.official_customer.values()), dtype=np.int64)
    b.ordinary_receipts(extras_rng, official_customers, 2)
    pattern_rows = _tagged_pattern_rows(b.patterns)
    n_special = len(pattern_rows) + sum(len(e) for e in b.extras) + n_bad
    if n_special > rows:
        return None
    cols = b.cust.columns()
    bad, duplicate, bad_counts = _bad_rows(b, n_bad, cols)
    special = _Block.concat([pattern_rows, *b.extras, bad])
    dup_mask = np.concatenate([np.zeros(len(special) - n_bad, dtype=bool), duplicate])
    ordered, positions = _layout(_rng(seed, _S_LAYOUT), rows, special, dup_mask)
    customer_number = _customer_numbers(_rng(seed, _S_POPULATION, 1), b.cust.n)
    return _World(
        rows=rows,
        seed=seed,
        customers=cols,
        customer_number=customer_number,
        name_table=pa.array(b.names.table, type=pa.string()),
        sender_pool=b.sender_pool,
        recv_members=b.recv_members,
        recv_offsets=b.recv_offsets,
        agent_members=b.agent_members,
        agent_offsets=b.agent_offsets,
        agent_width=b.agent_width,
        special=ordered,
        special_pos=positions,
        officials_rows=_officials_rows(b),
        network_rows=_network_rows(b),
        labels=_labels_table(b, ordered, customer_number),
        identities=_identities_table(b, customer_number),
        pattern_counts={p.kind: p.n for p in b.patterns},
        bad_counts=bad_counts,
        source_counts={
            "pattern_rows": len(pattern_rows),
            "party_ordinary_rows": sum(len(e) for e in b.extras),
            "bad_rows": n_bad,
            "background_rows": rows - n_special,
        },
        sizes={
            "customers": b.cust.n,
            "agents": int(b.agent_members.size),
            "officials": len(b.officials.ids),
            "networks": b.n_networks,
            "network_members": len(b.members.ids),
        },
    )


def _tagged_pattern_rows(patterns: Sequence[_Patterns]) -> _Block:
    """All pattern rows with tags renumbered globally (pattern order = label order)."""
    blocks = []
    offset = 0
    for p in patterns:
        rows = p.rows.take(np.arange(len(p.rows)))
        rows.tag = rows.tag + offset
        blocks.append(rows)
        offset += p.n
    return _Block.concat(blocks) if blocks else _Block.empty(0)


def _customer_numbers(rng: np.random.Generator, n: int) -> _I64:
    """Distinct random customer numbers (C + 8 digits), in no particular order."""
    space = int(min(99_999_999, max(100_000, 20 * n)))
    return (1 + _sorted_distinct(rng, n, space))[rng.permutation(n)]


def _layout(rng: np.random.Generator, rows: int, special: _Block, duplicate: _B) -> tuple[_Block, _I64]:
    """Scatter the special rows over the file; number every row; point duplicates at earlier rows."""
    n = len(special)
    positions = _sorted_distinct(rng, n, rows)
    slot_row = rng.permutation(n)
    before = positions - np.arange(n, dtype=np.int64)  # background rows ahead of each slot
    bad_slots = np.flatnonzero((before == 0) & duplicate[slot_row])
    if bad_slots.size:  # a duplicate needs an earlier row to copy: move it further down
        free = np.flatnonzero((before > 0) & ~duplicate[slot_row])[: bad_slots.size]
        if free.size < bad_slots.size:
            raise ValueError("not enough rows to place the duplicate-id rows")
        slot_row[bad_slots], slot_row[free] = slot_row[free], slot_row[bad_slots].copy()
    ordered = special.take(slot_row)
    ordered.txn_num = positions + 1
    dup = duplicate[slot_row]
    rank = (rng.random(int(dup.sum())) * before[dup]).astype(np.int64)
    ordered.txn_num[dup] = rank + np.searchsorted(before, rank, side="right") + 1
    return ordered, positions


# ---------------------------------------------------------------------------------------------------------
# Writing the transactions
# ---------------------------------------------------------------------------------------------------------
def _arrow_schema() -> pa.Schema:
    """The contract columns in file order; ts as timestamp[us, UTC]."""
    types = {schema.TS: pa.timestamp("us", tz="UTC")}
    columns = schema.TXN_COLUMNS
    return pa.schema(
        [(c, types.get(c, pa.float64() if c in schema.FLOAT_TXN_COLUMNS else pa.string())) for c in columns]
    )


class _Background:
    """Background rows by global background index, generated block by block from keyed streams."""

    def __init__(self, world: _World) -> None:
        self._world = world
        self._cached: tuple[int, _Block] | None = None

    def _block(self, k: int) -> _Block:
        """Background block k (the last one is kept for the next chunk)."""
        if self._cached is None or self._cached[0] != k:
            rng = _rng(self._world.seed, _S_BACKGROUND, k)
            self._cached = (k, _background_rows(self._world, rng, _BG_BLOCK, self._world.customers))
        return self._cached[1]

    def rows(self, start: int, stop: int) -> _Block:
        """Background rows [start, stop)."""
        if stop <= start:
            return _Block.empty(0)
        parts = []
        for k in range(start // _BG_BLOCK, (stop - 1) // _BG_BLOCK + 1):
            lo = max(start, k * _BG_BLOCK) - k * _BG_BLOCK
            hi = min(stop, (k + 1) * _BG_BLOCK) - k * _BG_BLOCK
            parts.append(self._block(k).take(np.arange(lo, hi)))
        return _Block.concat(parts)


def _chunk(world: _World, background: _Background, start: int, stop: int) -> _Block:
    """File rows [start, stop): the special rows at their positions, background rows around them."""
    lo, hi = np.searchsorted(world.special_pos, [start, stop])
    n_special = int(hi - lo)
    bg_start = start - int(lo)
    out = _Block.empty(stop - start)
    is_special = np.zeros(stop - start, dtype=bool)
    is_special[world.special_pos[lo:hi] - start] = True
    out.put(~is_special, background.rows(bg_start, bg_start + (stop - start) - n_special))
    out.txn_num[~is_special] = np.flatnonzero(~is_special) + start + 1
    out.put(is_special, world.special.take(np.arange(lo, hi)))
    return out


def _fixed_ids(prefix: str, numbers: _I64, width: int) -> pa.Array:
    """Ids such as T000000000123 built straight into an Arrow string buffer."""
    n = numbers.size
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    total = head.size + width
    buf = np.empty((n, total), dtype=np.uint8)
    buf[:, : head.size] = head
    rest = numbers.astype(np.int64, copy=True)
    for col in range(total - 1, head.size - 1, -1):
        buf[:, col] = rest % 10 + 48
        rest //= 10
    offsets = np.arange(0, (n + 1) * total, total, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf)])


_CC: Final = pa.array([p[0] for p in _PHONE_PLAN])
_TRUNK: Final = pa.array([p[1] for p in _PHONE_PLAN])
_COUNTRY_CODES: Final = pa.array(COUNTRIES)
_CURRENCY_CODES: Final = pa.array(CURRENCIES)


def _phone_strings(number: _I64, country: _I8, fmt: _I8) -> pa.Array:
    """Phones as typed at counters (five formats of the same number); null where there is none.

    Rows are grouped by format so each phone is formatted once, then put back in row order.
    """
    fmt = np.where(number >= 0, fmt, -1)
    order = np.argsort(fmt, kind="stable")
    bounds = np.searchsorted(fmt[order], np.arange(-1, _PHONE_FORMAT_P.size + 1))
    parts = [pa.nulls(int(bounds[1] - bounds[0]), pa.string())]
    for f in range(_PHONE_FORMAT_P.size):
        rows = order[bounds[f + 1] : bounds[f + 2]]
        parts.append(_phone_format(f, number[rows], country[rows]))
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    return pa.concat_arrays(parts).take(pa.array(inverse))


def _phone_format(fmt: int, nsn: _I64, country: _I8) -> pa.Array:
    """One phone format: 0 "081-234-5678", 1 "+66 81 234 5678", 2 "66812345678", 3 "0812345678", 4 E.164."""
    idx = pa.array(country)
    cc, trunk = _CC.take(idx), _TRUNK.take(idx)
    if fmt >= 2:
        full = pc.cast(pa.array(nsn), pa.string())
        if fmt == 4:
            return pc.binary_join_element_wise(pa.scalar("+"), cc, full, "")
        return pc.binary_join_element_wise(cc if fmt == 2 else trunk, full, "")
    p1 = pc.cast(pa.array(nsn // 10**7), pa.string())
    p2 = pc.utf8_lpad(pc.cast(pa.array((nsn // 10**4) % 1000), pa.string()), 3, "0")
    p3 = pc.utf8_lpad(pc.cast(pa.array(nsn % 10**4), pa.string()), 4, "0")
    if fmt == 0:
        return pc.binary_join_element_wise(pc.binary_join_element_wise(trunk, p1, ""), p2, p3, "-")
    return pc.binary_join_element_wise(pc.binary_join_element_wise(pa.scalar("+"), cc, ""), p1, p2, p3, " ")


def _with_defects(ids: pa.Array, defect: _I8, null_code: int, blank: str) -> pa.Array:
    """Null out (code null_code) or blank out (code null_code + 1) the ids of bad rows."""
    if not (defect > 0).any():
        return ids
    out = pc.if_else(pa.array(defect == null_code + 1), pa.scalar(blank), ids)
    return pc.if_else(pa.array(defect == null_code), pa.scalar(None, pa.string()), out)


def _to_batch(world: _World, block: _Block, arrow_schema: pa.Schema) -> pa.RecordBatch:
    """Materialise a block of numbers into the contract's columns."""
    cols = world.customers
    number = world.customer_number
    s, r = block.sender, block.receiver
    columns = {
        schema.TXN_ID: _with_defects(_fixed_ids("T", block.txn_num, 12), block.defect, 1, ""),
        schema.TS: pa.array((block.ts + _YEAR_START_S) * 1_000_000, type=pa.timestamp("us", tz="UTC")),
        schema.SENDER_ID: _with_defects(_fixed_ids("C", number[s], 8), block.defect, 3, "  "),
        schema.SENDER_NAME: world.name_table.take(pa.array(cols["name_id"][s])),
        schema.SENDER_COUNTRY: _COUNTRY_CODES.take(pa.array(cols["res"][s])),
        schema.RECEIVER_ID: _with_defects(_fixed_ids("C", number[r], 8), block.defect, 5, ""),
        schema.RECEIVER_NAME: world.name_table.take(pa.array(cols["name_id"][r])),
        schema.RECEIVER_COUNTRY: _COUNTRY_CODES.take(pa.array(cols["res"][r])),
        schema.AMOUNT: pa.array(block.amount, type=pa.float64()),
        schema.CURRENCY: _CURRENCY_CODES.take(pa.array(block.currency)),
        schema.AMOUNT_USD: pa.array(block.amount_usd, type=pa.float64()),
        schema.AGENT_ID: _fixed_ids("AG", block.agent + 1, world.agent_width),
        schema.SENDER_PHONE: _phone_strings(cols["phone"][s], cols["phone_ctry"][s], block.s_fmt),
        schema.RECEIVER_PHONE: _phone_strings(cols["phone"][r], cols["phone_ctry"][r], block.r_fmt),
    }
    return pa.RecordBatch.from_arrays([columns[c] for c in arrow_schema.names], schema=arrow_schema)


def _write_transactions(
    path: Path,
    world: _World,
    chunk_rows: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Write transactions.arrow chunk by chunk (zstd-compressed Arrow IPC file)."""
    arrow_schema = _arrow_schema()
    background = _Background(world)
    options = ipc.IpcWriteOptions(compression="zstd")
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, arrow_schema, options=options) as writer:
        for start in range(0, world.rows, chunk_rows):
            stop = min(world.rows, start + chunk_rows)
            writer.write_batch(_to_batch(world, _chunk(world, background, start, stop), arrow_schema))
            if progress is not None:
                progress(stop - start)


# ---------------------------------------------------------------------------------------------------------
# Lists, labels, identities, world.json
# ---------------------------------------------------------------------------------------------------------
def _officials_rows(b: _Builder) -> list[list[str]]:
    """officials.csv rows in OpenSanctions targets.simple.csv order."""
    p = b.officials
    out = []
    for i, extra in enumerate(b.official_extra):
        row = {
            "id": p.ids[i],
            "schema": "Person",
            "name": p.name(i),
            "countries": ";".join(COUNTRIES[c].lower() for c in p.countries[i]),
            "identifiers": "",
            "phones": ";".join(_e164(c, n) for c, n in p.phones[i]),
            "program_ids": "",
            **extra,
        }
        out.append([row[c] for c in OFFICIAL_HEADER])
    return out


def _network_rows(b: _Builder) -> list[list[str]]:
    """networks.csv rows."""
    p = b.members
    return [
        [
            f"N-{int(p.network[i]) + 1}",
            p.ids[i],
            p.name(i),
            ";".join(b.member_aliases[i]),
            ";".join(_e164(c, n) for c, n in p.phones[i]),
            ";".join(COUNTRIES[c].lower() for c in p.countries[i]),
            p.role[i],
        ]
        for i in range(len(p.ids))
    ]


def _customer_ids(numbers: _I64) -> list[str]:
    """Customer id strings."""
    return [f"C{n:08d}" for n in numbers]


def _list_column(values: list[str], counts: _I64) -> pa.Array:
    """A list<string> column from values laid out group after group."""
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.string()))


def _arrow_type(dtype: Any) -> pa.DataType:
    """Arrow type of a schema.py Polars dtype."""
    if dtype == pl.List(pl.String()):
        return pa.list_(pa.string())
    return {
        pl.String(): pa.string(),
        pl.Boolean(): pa.bool_(),
        pl.Float64(): pa.float64(),
        pl.Int64(): pa.int64(),
    }[dtype]


def _labels_table(b: _Builder, ordered: _Block, number: _I64) -> pa.Table:
    """labels.parquet: one row per pattern with every transfer's id."""
    tagged = np.flatnonzero(ordered.tag >= 0)
    order = tagged[np.lexsort((ordered.txn_num[tagged], ordered.ts[tagged], ordered.tag[tagged]))]
    total = sum(p.n for p in b.patterns)
    txn_counts = np.bincount(ordered.tag[order], minlength=total)
    txn_ids = [f"T{t:012d}" for t in ordered.txn_num[order]]

    def cat(name: str) -> np.ndarray:
        """One attribute of every pattern, in label order."""
        return np.concatenate([getattr(p, name) for p in b.patterns])

    counterparty = cat("counterparty")
    official = cat("official")
    network = cat("network")
    threshold = cat("threshold")
    cp_ids = [None if c < 0 else f"C{number[c]:08d}" for c in counterparty]
    columns = {
        "pattern_id": [f"P{i + 1:06d}" for i in range(total)],
        "kind": [p.kind for p in b.patterns for _ in range(p.n)],
        "suspicious": [p.suspicious for p in b.patterns for _ in range(p.n)],
        "typology": [p.typology for p in b.patterns for _ in range(p.n)],
        "variant": [v for p in b.patterns for v in p.variant],
        "subject_id": _customer_ids(number[cat("subject")]),
        "counterparty_id": cp_ids,
        "party_ids": _list_column(_customer_ids(number[cat("party_values")]), cat("party_counts")),
        "official_id": [None if o < 0 else b.officials.ids[o] for o in official],
        "network_id": [None if n < 0 else f"N-{n + 1}" for n in network],
        "threshold_usd": [None if np.isnan(t) else float(t) for t in threshold],
        "txn_ids": _list_column(txn_ids, txn_counts),
    }
    arrow_schema = pa.schema([(k, _arrow_type(v)) for k, v in schema.LABEL_SCHEMA.items()])
    return pa.table({k: columns[k] for k in schema.LABEL_SCHEMA}, schema=arrow_schema)


def _identities_table(b: _Builder, number: _I64) -> pa.Table:
    """identities.parquet: list entries behind customers, and namesakes who are not them."""
    rows = sorted(b.identity_rows, key=lambda r: (r[0], r[2]))
    return pa.table(
        {
            "customer_id": [f"C{number[r[0]]:08d}" for r in rows],
            "list_kind": [r[1] for r in rows],
            "list_id": [r[2] for r in rows],
            "network_id": [r[3] for r in rows],
            "noise": [r[4] for r in rows],
            "is_true_match": [r[5] for r in rows],
        },
        schema=IDENTITY_SCHEMA,
    )


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A UTF-8 CSV with a header line and minimal quoting."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_world_json(paths: Mapping[str, Path], world: _World) -> None:
    """world.json: what was generated, with which parameters, and the hash of every file."""
    data_files = [p for k, p in paths.items() if k != "world"]
    doc = {
        "generator": "followmoney.synth",
        "generator_version": GENERATOR_VERSION,
        "library_versions": {"numpy": np.__version__, "pyarrow": pa.__version__},
        "rows": world.rows,
        "seed": world.seed,
        "year": 2025,
        "counts": world.pattern_counts,
        "bad_rows": world.bad_counts,
        "rows_by_source": world.source_counts,
        "sizes": world.sizes,
        "fx_usd_per_unit": dict(USD_PER_UNIT),
        "thresholds_usd": list(THRESHOLDS_USD),
        "files": {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in data_files},
    }
    paths["world"].write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
