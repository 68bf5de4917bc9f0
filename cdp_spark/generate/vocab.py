"""Word lists the generator draws from: names, places, products, messages.

Everything here is plain data plus two small helpers (transliteration and female surnames), so
that the look of the data set can be changed without touching the simulation.

Example:
    >>> transliterate("Илья", 0), transliterate("Илья", 2), transliterate("Илья", 3)
    ('Ilia', 'Ilya', 'Ilja')
"""

from __future__ import annotations

from typing import NamedTuple

# --- transliteration -------------------------------------------------------------------------
# Russians write their names in Latin letters in several ways: the passport/ICAO scheme (Ilia,
# Mariia), the BGN scheme with apostrophes (Il'ya), the common simplified one (Ilya, Mariya) and
# a j-based one seen in German/Czech documents (Ilja, Marija). All four appear in the data.
_COMMON = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z", "и": "i",
    "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "ш": "sh", "щ": "shch", "ъ": "", "э": "e", "ы": "y", "ч": "ch",
    "х": "kh", "ц": "ts",
}  # fmt: skip
_SCHEMES: tuple[dict[str, str], ...] = (
    {"ё": "e", "й": "i", "ь": "", "ю": "iu", "я": "ia"},  # 0: passport / ICAO 9303
    {"ё": "yo", "й": "y", "ь": "'", "ю": "yu", "я": "ya"},  # 1: BGN/PCGN with apostrophes
    {"ё": "e", "й": "y", "ь": "", "ю": "yu", "я": "ya"},  # 2: common simplified
    {"ё": "jo", "й": "j", "ь": "", "ю": "ju", "я": "ja", "х": "h", "ц": "c"},  # 3: j-based
)
N_SCHEMES = len(_SCHEMES)


def transliterate(text: str, scheme: int) -> str:
    """Latin spelling of a Cyrillic ``text`` under transliteration ``scheme`` (0..3).

    Example:
        >>> transliterate("Мария", 0), transliterate("Дарья", 1)
        ('Mariia', "Dar'ya")
    """
    table = _SCHEMES[scheme]
    out = []
    for ch in text:
        low = ch.lower()
        lat = table.get(low, _COMMON.get(low, ch))
        out.append(lat.capitalize() if ch != low and lat else lat)
    return "".join(out)


def female_surname(cyr: str) -> str:
    """The feminine form of a Russian surname (Иванов -> Иванова; Ким stays Ким).

    Example:
        >>> female_surname("Соловьёв"), female_surname("Шевченко")
        ('Соловьёва', 'Шевченко')
    """
    if cyr.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return cyr + "а"
    if cyr.endswith("ский"):
        return cyr[:-4] + "ская"
    return cyr


# --- people ------------------------------------------------------------------------------------
class FirstName(NamedTuple):
    native: str  # as the person writes it at home (Cyrillic for Russians)
    gender: int  # 0 male, 1 female
    country: int  # index into COUNTRIES
    common: str  # the customary Latin form, when it differs from plain transliteration


def _ru(names: str, gender: int) -> list[FirstName]:
    out = []
    for item in names.split():
        native, _, common = item.partition("/")
        out.append(FirstName(native, gender, 0, common))
    return out


def _intl(names: str, gender: int, country: int) -> list[FirstName]:
    return [FirstName(n, gender, country, "") for n in names.split()]


FIRST_NAMES: list[FirstName] = (
    _ru(
        "Илья Алексей/Alexey Сергей/Sergey Дмитрий/Dmitry Андрей/Andrey Александр/Alexander "
        "Евгений/Evgeny Михаил Иван Николай/Nikolay Павел Артём/Artem Максим/Maxim Игорь "
        "Кирилл Владимир Юрий/Yuri Фёдор/Fedor Роман Денис",
        0,
    )
    + _ru(
        "Мария/Maria Юлия/Julia Наталья/Natalia Екатерина/Ekaterina Анна Ольга Татьяна/Tatiana "
        "Елена Анастасия/Anastasia Ксения/Xenia Дарья/Daria Светлана Виктория/Victoria Ирина "
        "Полина Алёна/Alena София/Sofia Валерия/Valeria Людмила Марина",
        1,
    )
    + _intl("James Oliver Thomas Jack Harry George William Daniel Samuel Joseph", 0, 1)
    + _intl("Emma Olivia Sophie Amelia Emily Charlotte Jessica Grace Lucy Hannah", 1, 1)
    + _intl("Lukas Jonas Felix Maximilian Leon Paul Jürgen Stefan Michael Tobias", 0, 2)
    + _intl("Anna Lena Laura Julia Sarah Katharina Mia Sophie Marie Lea", 1, 2)
)

# Russian surnames are stored in the male form; the female form is derived.
RU_SURNAMES = [
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Захаров",
    "Зайцев",
    "Соловьёв",
    "Белов",
    "Ким",
    "Шевченко",
    "Ильин",
    "Борисов",
    "Григорьев",
    "Романов",
    "Воробьёв",
    "Сергеев",
    "Кузьмин",
    "Фролов",
    "Александров",
    "Дмитриев",
    "Королёв",
    "Гусев",
    "Киселёв",
    "Ильюшин",
    "Тарасов",
    "Белоусов",
    "Медведев",
    "Ершов",
    "Никитин",
    "Соболев",
    "Рябов",
    "Поляков",
    "Цветков",
    "Данилов",
    "Жуков",
    "Комаров",
    "Успенский",
    "Яковлев",
    "Чернов",
    "Журавлёв",
]
GB_SURNAMES = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "O'Brien",
    "Patel",
    "Hughes",
    "Edwards",
]
DE_SURNAMES = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Weiß",
]
SURNAMES: list[tuple[str, int]] = (
    [(s, 0) for s in RU_SURNAMES] + [(s, 1) for s in GB_SURNAMES] + [(s, 2) for s in DE_SURNAMES]
)

# Umlauts and ß are written three ways by Germans and their CRMs.
GERMAN_FOLDS = (
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"},
    {"ä": "a", "ö": "o", "ü": "u", "ß": "ss"},
)


def fold_german(text: str, variant: int) -> str:
    """``Müller`` as ``Mueller`` (variant 0) or ``Muller`` (variant 1).

    Example:
        >>> fold_german("Schröder", 0), fold_german("Weiß", 1)
        ('Schroeder', 'Weiss')
    """
    table = GERMAN_FOLDS[variant]
    return "".join(
        (table[c.lower()].capitalize() if c.isupper() else table[c]) if c.lower() in table else c
        for c in text
    )


# --- places -------------------------------------------------------------------------------------
class Country(NamedTuple):
    code: str
    variants: tuple[str, ...]  # how CRMs spell it besides the ISO code
    currency: str
    rub_rate: float  # RUB per unit of the currency, for prices


COUNTRIES = (
    Country("RU", ("Russia", "Россия", "RUS", "Russian Federation"), "RUB", 1.0),
    Country("GB", ("UK", "United Kingdom", "GBR", "England"), "GBP", 115.0),
    Country("DE", ("Germany", "Deutschland", "DEU"), "EUR", 98.0),
)
COUNTRY_WEIGHTS = (0.80, 0.12, 0.08)


class TimeZone(NamedTuple):
    name: str
    std_offset_h: int
    eu_dst: bool  # EU summer time (last Sunday of March to last Sunday of October)


TIMEZONES = (
    TimeZone("Europe/Moscow", 3, False),
    TimeZone("Asia/Yekaterinburg", 5, False),
    TimeZone("Asia/Novosibirsk", 7, False),
    TimeZone("Europe/London", 0, True),
    TimeZone("Europe/Berlin", 1, True),
)


class City(NamedTuple):
    native: str
    latin: tuple[str, ...]  # Latin spellings seen in the data
    country: int
    tz: int
    weight: float  # share of the country's customers
    area_code: str  # landline prefix after the country code
    postcode_prefix: str
    stores: int  # physical stores (all in Moscow time, see POS)
    store_code: str


CITIES = (
    City("Москва", ("Moscow", "Moskva"), 0, 0, 0.34, "495", "1", 6, "MSK"),
    City("Санкт-Петербург", ("Saint Petersburg", "St. Petersburg", "Sankt-Peterburg"), 0, 0, 0.18,
         "812", "19", 4, "SPB"),
    City("Екатеринбург", ("Yekaterinburg", "Ekaterinburg"), 0, 1, 0.09, "343", "620", 0, "EKB"),
    City("Новосибирск", ("Novosibirsk",), 0, 2, 0.08, "383", "630", 0, "NSK"),
    City("Казань", ("Kazan", "Kazan'"), 0, 0, 0.11, "843", "420", 2, "KZN"),
    City("Нижний Новгород", ("Nizhny Novgorod", "Nizhniy Novgorod"), 0, 0, 0.10, "831", "603",
         2, "NNV"),
    City("Краснодар", ("Krasnodar",), 0, 0, 0.10, "861", "350", 2, "KRD"),
    City("London", ("LONDON", "London, UK"), 1, 3, 0.60, "20", "", 0, ""),
    City("Manchester", ("MANCHESTER",), 1, 3, 0.22, "161", "", 0, ""),
    City("Birmingham", ("B'ham", "BIRMINGHAM"), 1, 3, 0.18, "121", "", 0, ""),
    City("Berlin", ("BERLIN",), 2, 4, 0.45, "30", "1", 0, ""),
    City("München", ("Munich", "Muenchen"), 2, 4, 0.30, "89", "8", 0, ""),
    City("Hamburg", ("HAMBURG",), 2, 4, 0.25, "40", "2", 0, ""),
)  # fmt: skip

GB_POSTCODE_AREAS = {7: ("SW", "NW", "E", "N", "SE", "W"), 8: ("M",), 9: ("B",)}


class Street(NamedTuple):
    native: str  # the proper name: Ленина
    latin: str  # Lenina
    kind: int  # 0 улица (street), 1 проспект (avenue), 2 переулок (lane)


RU_STREETS = tuple(
    Street(n, transliterate(n, 2), k)
    for n, k in [
        ("Ленина", 0), ("Пушкина", 0), ("Мира", 1), ("Гагарина", 0), ("Советская", 0),
        ("Садовая", 0), ("Молодёжная", 0), ("Школьная", 0), ("Лесная", 0), ("Центральная", 0),
        ("Набережная", 0), ("Кирова", 0), ("Чехова", 2), ("Горького", 0), ("Победы", 1),
        ("Строителей", 1), ("Заречная", 0), ("Полевая", 2), ("Комсомольская", 0), ("Луговая", 2),
    ]
)  # fmt: skip
# Russian street-type words: (abbreviation, full word, transliterated word, English word).
RU_STREET_KINDS = (
    ("ул.", "улица", "ulitsa", "st"),
    ("пр-т", "проспект", "prospekt", "ave"),
    ("пер.", "переулок", "pereulok", "lane"),
)
GB_STREETS = (
    "Baker", "High", "Station", "Church", "Victoria", "Green", "Manor", "Park", "Queen's",
    "Kings", "Mill", "Albert", "Springfield", "Grange", "Oxford",
)  # fmt: skip
GB_STREET_KINDS = (("Street", "St"), ("Road", "Rd"), ("Lane", "Ln"), ("Avenue", "Ave"))
DE_STREETS = (
    "Haupt", "Schul", "Garten", "Bahnhof", "Dorf", "Berg", "Lindens", "Kirch", "Wald", "Ring",
    "Goethe", "Schiller", "Mozart", "Rosen", "Friedrich",
)  # fmt: skip

# --- email ---------------------------------------------------------------------------------------
# (domain, weight) per country. gmail addresses get dot and +tag noise (Gmail ignores both).
EMAIL_DOMAINS = (
    (("gmail.com", 0.30), ("yandex.ru", 0.25), ("mail.ru", 0.20), ("bk.ru", 0.05),
     ("list.ru", 0.05), ("inbox.ru", 0.04), ("rambler.ru", 0.05), ("ya.ru", 0.06)),
    (("gmail.com", 0.45), ("outlook.com", 0.15), ("hotmail.co.uk", 0.15), ("yahoo.co.uk", 0.10),
     ("icloud.com", 0.10), ("btinternet.com", 0.05)),
    (("gmail.com", 0.35), ("web.de", 0.25), ("gmx.de", 0.25), ("t-online.de", 0.15)),
)  # fmt: skip
WORK_DOMAINS = ("company.ru", "holding.ru", "bank.ru", "uni.ac.uk", "firma.de")
# Fake addresses people type to get past a form; identity resolution must block them.
JUNK_EMAILS = ("test@test.com", "no@email.com", "none@none.com")
JUNK_PHONES = ("0000000000", "+7 (999) 999-99-99")
DOMAIN_TYPOS = {"gmail.com": "gmial.com", "yandex.ru": "yandex.ry", "mail.ru": "mail.ri",
                "outlook.com": "outlok.com", "gmx.de": "gmx.d"}  # fmt: skip
PLUS_TAGS = ("shop", "promo", "retail", "orders", "news", "2026")


# --- catalogue -----------------------------------------------------------------------------------
class Category(NamedTuple):
    code: str
    nouns: tuple[str, ...]
    brands: tuple[str, ...]
    median_price: float  # RUB
    margin: float  # typical gross margin


CATEGORIES = (
    Category(
        "electronics",
        ("Наушники", "Smartphone", "Power bank", "Колонка", "Smart watch", "Планшет", "Charger",
         "Кабель USB-C"),
        ("Samsung", "Xiaomi", "Apple", "JBL", "Sony", "Honor"),
        6500.0, 0.12,
    ),
    Category(
        "home",
        ("Кофеварка", "Blender", "Чайник", "Pan set", "Пылесос", "Lamp", "Плед", "Towel set"),
        ("Philips", "Tefal", "Bosch", "IKEA", "Redmond", "Polaris"),
        3200.0, 0.30,
    ),
    Category(
        "beauty",
        ("Шампунь", "Face cream", "Парфюм", "Lipstick", "Гель для душа", "Serum"),
        ("L'Oreal", "Nivea", "Garnier", "Natura Siberica", "Clinique"),
        900.0, 0.45,
    ),
    Category(
        "clothing",
        ("Куртка", "T-shirt", "Джинсы", "Hoodie", "Платье", "Sweater", "Шарф"),
        ("Zarina", "Gloria Jeans", "Uniqlo", "H&M", "Levi's", "Befree"),
        2800.0, 0.50,
    ),
    Category(
        "shoes",
        ("Кроссовки", "Boots", "Туфли", "Sandals", "Валенки"),
        ("Nike", "Adidas", "Ecco", "Puma", "Ralf Ringer"),
        5200.0, 0.42,
    ),
    Category(
        "kids",
        ("Конструктор", "Doll", "Коляска", "Puzzle", "Развивающая игрушка"),
        ("LEGO", "Hasbro", "Mattel", "Happy Baby", "Chicco"),
        2400.0, 0.35,
    ),
    Category(
        "sports",
        ("Гантели", "Yoga mat", "Велосипед", "Tent", "Лыжи", "Bottle"),
        ("Demix", "Decathlon", "Stern", "Nordway", "Wilson"),
        3500.0, 0.33,
    ),
    Category(
        "grocery",
        ("Кофе в зёрнах", "Tea", "Шоколад", "Olive oil", "Мёд", "Pasta"),
        ("Lavazza", "Ahmad", "Алёнка", "Barilla", "Jacobs"),
        450.0, 0.22,
    ),
    Category(
        "books",
        ("Роман", "Cookbook", "Детектив", "Textbook", "Комикс"),
        ("Эксмо", "АСТ", "Penguin", "МИФ", "Азбука"),
        650.0, 0.28,
    ),
    Category(
        "garden",
        ("Семена", "Hose", "Грабли", "Grill", "Садовые перчатки"),
        ("Gardena", "Palisad", "Greenworks", "Park"),
        1500.0, 0.38,
    ),
)  # fmt: skip
MODEL_SUFFIXES = ("Pro", "Lite", "Max", "Mini", "X", "Classic", "Eco", "Plus", "2", "S")

STORE_NAMES = {"MSK": "Москва", "SPB": "Санкт-Петербург", "KZN": "Казань",
               "NNV": "Нижний Новгород", "KRD": "Краснодар"}  # fmt: skip
STORE_PLACES = ("ТЦ Мега", "ТРЦ Галерея", "Центр", "Вокзал", "ТЦ Аура", "ТРК Европолис")

# --- web -----------------------------------------------------------------------------------------
SEARCH_QUERIES = (
    "наушники", "кроссовки nike", "подарок маме", "чехол iphone", "детская коляска", "кофеварка",
    "winter jacket", "lego", "yoga mat", "пылесос робот", "духи женские", "power bank 20000",
    "джинсы мужские", "шампунь \"без сульфатов\"", "подарок на 8 марта", "ёлочные игрушки",
    "running shoes", "чайник электрический", "planшет", "smart watch", "книги детектив",
    "black friday", "скидки", "t-shirt oversize", "мёд", "велосипед детский", "grill",
    "плед", "кофе в зернах", "sale",
)  # fmt: skip
UTM_SOURCES = ("google", "yandex", "vk", "telegram", "email", "partner", "youtube")
UTM_WEIGHTS = (0.30, 0.30, 0.12, 0.08, 0.10, 0.05, 0.05)
PROMO_PAGES = ("/promo/sale", "/promo/new-arrivals", "/promo/black-friday", "/promo/gifts")

# --- support -------------------------------------------------------------------------------------
TICKET_TOPICS = ("delivery", "return", "payment", "product_quality", "account", "loyalty", "other")
# Messages are built from an opening, a body by topic and a closing, in the customer's language.
# Bodies carry commas and double quotes on purpose: CSV writers and readers must quote them.
NEG_BODY_RU = {
    "delivery": ("Заказ опаздывает уже на неделю, курьер не отвечает",
                 "Курьер сказал \"буду завтра\", но так и не приехал",
                 "Посылка пришла мятая, коробка порвана"),
    "return": ("Хочу вернуть товар, он не подошёл, а возврат не оформляется",
               "Деньги за возврат так и не пришли, прошло 3 недели"),
    "payment": ("Списали деньги дважды, верните, пожалуйста",
                "Оплата прошла, а заказ \"отменён\""),
    "product_quality": ("Товар сломался через два дня, ужасное качество",
                        "Пришёл не тот размер, и цвет другой"),
    "account": ("Не могу войти в личный кабинет, пароль не сбрасывается",),
    "loyalty": ("Баллы не начислились за покупку в магазине", "Карта лояльности не работает"),
    "other": ("Очень грубый продавец в магазине", "Сайт постоянно тормозит"),
}  # fmt: skip
NEG_BODY_EN = {
    "delivery": ("My order is a week late and nobody answers", "The parcel arrived damaged"),
    "return": ("I returned the item, but the refund never arrived",),
    "payment": ("You charged my card twice, please refund",
                "Payment went through but the order says \"cancelled\""),
    "product_quality": ("It broke after two days, terrible quality", "Wrong size, wrong colour"),
    "account": ("I cannot log in, password reset does not work",),
    "loyalty": ("My points were not added after I paid in store",),
    "other": ("The website is painfully slow",),
}  # fmt: skip
POS_BODY_RU = (
    "Спасибо, всё пришло вовремя, отличный сервис",
    "Очень довольна покупкой, рекомендую",
    "Быстро помогли с вопросом, спасибо оператору",
    "Подскажите, когда будет скидка?",
    "Всё отлично, курьер вежливый",
    "Хотела бы узнать статус заказа, спасибо",
)
POS_BODY_EN = (
    "Thanks, everything arrived on time, great service",
    "Love the product, thank you",
    "Quick and helpful answer, thanks",
    "Could you tell me the order status? Thanks",
)
NEG_OPEN_RU = ("Здравствуйте.", "Это возмутительно!", "Добрый день,", "Опять проблема:", "")
NEG_CLOSE_RU = ("Больше у вас не покупаю.", "Жду ответа.", "Разочарована.", "Верните деньги!", "")
NEG_OPEN_EN = ("Hello,", "This is unacceptable!", "Hi,", "")
NEG_CLOSE_EN = ("I will not order again.", "Very disappointed.", "Waiting for your reply.", "")
POS_OPEN_RU = ("Здравствуйте!", "Добрый день!", "")
POS_OPEN_EN = ("Hi!", "Hello,", "")
